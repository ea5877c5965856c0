"""Rules shared by every Switchboard service, written once.

Each module owns one rule that more than one service reads: the catalog file
(:mod:`switchboard_rules.catalog`), durations and budget windows
(:mod:`~switchboard_rules.durations`, :mod:`~switchboard_rules.windows`), policy
and tier names (:mod:`~switchboard_rules.policies`) and the fields of keys and
teams (:mod:`~switchboard_rules.fields`). Business logic stays in the services;
what lives here is what two services must never disagree on.
"""
