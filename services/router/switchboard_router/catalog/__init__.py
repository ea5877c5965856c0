"""The model catalog: public model names, their deployments and routing policy, loaded from YAML."""
