/* Draw the community dashboard's weekly charts with the vendored Chart.js (no CDN: works offline). */
(function () {
  "use strict";

  function draw() {
    var source = document.getElementById("dashboard-data");
    if (!source || typeof window.Chart === "undefined") {
      return;
    }
    var data = JSON.parse(source.textContent);
    window.shequnCharts = data.charts.map(function (spec) {
      var canvas = document.getElementById(spec.id);
      return new window.Chart(canvas, {
        type: spec.type,
        data: {
          labels: data.labels,
          datasets: [{
            label: spec.label,
            data: spec.values,
            borderColor: spec.colour,
            backgroundColor: spec.type === "bar" ? spec.colour : spec.colour + "33",
            fill: spec.type === "line",
            tension: 0.25
          }]
        },
        options: {
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          plugins: { legend: { display: false } },
          scales: { y: { beginAtZero: true, ticks: spec.integer ? { precision: 0, stepSize: 1 } : {} } }
        }
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
