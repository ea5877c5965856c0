// Switchboard dashboard: copy buttons, confirmations, the new-key dialog and the per-day chart.
// No inline scripts (the pages' Content-Security-Policy forbids them); everything is wired here.
"use strict";

document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const text = button.getAttribute("data-copy");
  try {
    await navigator.clipboard.writeText(text);
  } catch (err) {
    const area = document.createElement("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  const label = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = label; }, 1500);
});

document.addEventListener("submit", (event) => {
  const message = event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) event.preventDefault();
});

document.addEventListener("DOMContentLoaded", () => {
  const dialog = document.querySelector("dialog[data-open]");
  if (dialog && typeof dialog.showModal === "function") dialog.showModal();

  const canvas = document.getElementById("usage-chart");
  const data = document.getElementById("usage-data");
  if (!canvas || !data || typeof window.Chart !== "function") {
    document.querySelectorAll(".chart-fallback").forEach((t) => t.classList.remove("chart-fallback"));
    if (canvas) canvas.remove();
    return;
  }
  const series = JSON.parse(data.textContent);
  new window.Chart(canvas, {
    type: "bar",
    data: {
      labels: series.days,
      datasets: [
        { label: "Spend (USD)", data: series.spend.map(Number), yAxisID: "spend", backgroundColor: "#3b6ea5" },
        { label: "Requests", data: series.requests, yAxisID: "requests", type: "line", borderColor: "#c07a1a" },
      ],
    },
    options: {
      animation: false,
      scales: {
        spend: { position: "left", beginAtZero: true },
        requests: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false } },
      },
    },
  });
});
