// Draws the dashboard's charts with the vendored Chart.js, from the JSON blocks the server puts
// beside each <canvas>. No data is fetched: the page already holds every number (and a table of
// them under each chart), so a chart that fails to draw loses nothing but the picture.
(function () {
  'use strict';

  // Okabe-Ito colours stay apart under the common colour-vision deficiencies; the markers,
  // dashes and hatching below carry the same distinction for anyone who sees no colour at all.
  var COLOURS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7'];
  var MARKERS = ['circle', 'triangle', 'rect', 'rectRot'];
  var DASHES = [[], [7, 4], [2, 3], [10, 3, 2, 3]];

  function hatch(colour, solid) {
    if (solid) return colour;
    var tile = document.createElement('canvas');
    tile.width = tile.height = 8;
    var g = tile.getContext('2d');
    g.fillStyle = '#ffffff';
    g.fillRect(0, 0, 8, 8);
    g.strokeStyle = colour;
    g.lineWidth = 2;
    g.beginPath();
    g.moveTo(0, 8); g.lineTo(8, 0);
    g.moveTo(-2, 2); g.lineTo(2, -2);
    g.moveTo(6, 10); g.lineTo(10, 6);
    g.stroke();
    return g.createPattern(tile, 'repeat');
  }

  function format(value, fmt) {
    if (value === null || value === undefined) return '';
    if (fmt === 'pct') return (value * 100).toFixed(1) + ' %';
    if (fmt === 'dec1') return value.toLocaleString(undefined, { maximumFractionDigits: 1, minimumFractionDigits: 1 });
    return Math.round(value).toLocaleString();
  }

  // Direct value labels on every bar and point, so no number has to be read off an axis.
  var valueLabels = {
    id: 'valueLabels',
    afterDatasetsDraw: function (chart) {
      var fmt = chart.options.plugins.valueLabels.format;
      var horizontal = chart.options.indexAxis === 'y';
      var g = chart.ctx;
      g.save();
      g.font = '11px system-ui, sans-serif';
      g.fillStyle = '#1b1f24';
      chart.data.datasets.forEach(function (dataset, d) {
        var meta = chart.getDatasetMeta(d);
        if (meta.hidden) return;
        meta.data.forEach(function (element, n) {
          var text = format(dataset.data[n], fmt);
          if (!text) return;
          if (horizontal) {
            g.textAlign = 'left'; g.textBaseline = 'middle';
            g.fillText(text, element.x + 4, element.y);
          } else if (chart.config.type === 'bar') {
            g.textAlign = 'center'; g.textBaseline = 'bottom';
            g.fillText(text, element.x, element.y - 3);
          } else {
            // Line charts: the highest value at a point is labelled above it, the others below,
            // so the labels of two close lines do not sit on each other.
            var above = chart.data.datasets.every(function (other, o) {
              return o === d || other.data[n] === null || other.data[n] === undefined ||
                other.data[n] < dataset.data[n] || (other.data[n] === dataset.data[n] && o > d);
            });
            g.textAlign = 'center';
            g.textBaseline = above ? 'bottom' : 'top';
            g.fillText(text, element.x, element.y + (above ? -7 : 7));
          }
        });
      });
      g.restore();
    }
  };

  function datasets(spec) {
    return spec.series.map(function (series, n) {
      var colour = COLOURS[n % COLOURS.length];
      if (spec.kind === 'line') {
        return {
          label: series.label, data: series.values, borderColor: colour, backgroundColor: colour,
          borderDash: DASHES[n % DASHES.length], pointStyle: MARKERS[n % MARKERS.length],
          pointRadius: 5, pointHoverRadius: 6, borderWidth: 2, spanGaps: false
        };
      }
      return {
        label: series.label, data: series.values, borderColor: colour, borderWidth: 1.5,
        backgroundColor: hatch(colour, n === 0)
      };
    });
  }

  function draw(canvas) {
    var block = document.getElementById(canvas.dataset.chart);
    if (!block || typeof Chart === 'undefined') return;
    var spec = JSON.parse(block.textContent);
    var horizontal = spec.kind === 'hbar';
    var box = canvas.parentElement;
    if (horizontal) {
      // Room for every bar (grouped bars need more) and its label.
      var perBar = spec.series.length > 1 ? 44 : 30;
      box.style.height = Math.max(160, spec.labels.length * perBar + 70) + 'px';
    }
    var valueAxis = {
      beginAtZero: true,
      title: { display: true, text: spec.yTitle },
      grace: '12%'
    };
    var categoryAxis = { title: { display: true, text: spec.xTitle }, ticks: { autoSkip: false } };
    if (spec.format === 'pct') {
      // Rates are fractions; a 0-5 % axis has ticks 0.5 % apart, so the decimals follow the step
      // (toFixed(0) wrote "0 %" on every tick of a low reopen rate).
      valueAxis.ticks = {
        callback: function (v, n, ticks) {
          var step = ticks.length > 1 ? Math.abs(ticks[1].value - ticks[0].value) * 100 : 1;
          var digits = step >= 1 ? 0 : Math.min(3, Math.ceil(-Math.log10(step) - 1e-9));
          return (v * 100).toFixed(digits) + ' %';
        }
      };
    } else if (spec.format === 'int') {
      valueAxis.ticks = { precision: 0 };  // counts: no 0.2-item gridlines
    }
    // A bar or point with a link opens the tickets behind it (the theme's items in that week).
    function linkAt(elements) {
      if (!spec.links || !elements.length) return null;
      var series = spec.links[elements[0].datasetIndex];
      return series ? series[elements[0].index] : null;
    }
    new Chart(canvas, {
      type: spec.kind === 'line' ? 'line' : 'bar',
      data: { labels: spec.labels, datasets: datasets(spec) },
      options: {
        indexAxis: horizontal ? 'y' : 'x',
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        layout: { padding: { right: horizontal ? 40 : 8, top: 6 } },
        onClick: function (event, elements) {
          var link = linkAt(elements);
          if (link) window.location.assign(link);
        },
        onHover: function (event, elements) {
          event.native.target.style.cursor = linkAt(elements) ? 'pointer' : 'default';
        },
        scales: horizontal ? { x: valueAxis, y: categoryAxis } : { x: categoryAxis, y: valueAxis },
        plugins: {
          legend: { display: spec.series.length > 1, labels: { usePointStyle: spec.kind === 'line' } },
          valueLabels: { format: spec.format },
          tooltip: {
            callbacks: {
              label: function (item) { return item.dataset.label + ': ' + format(item.raw, spec.format); }
            }
          }
        }
      },
      plugins: [valueLabels]
    });
    canvas.dataset.rendered = 'true';
  }

  function offerBrowserZone() {
    var button = document.getElementById('use-browser-tz');
    var select = document.getElementById('tz-select');
    if (!button || !select || !window.Intl) return;
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (!zone || zone === select.value) return;
    button.hidden = false;
    button.textContent = 'Use my time zone (' + zone + ')';
    button.addEventListener('click', function () {
      if (!Array.prototype.some.call(select.options, function (o) { return o.value === zone; })) {
        select.add(new Option(zone, zone));
      }
      select.value = zone;
      select.form.submit();
    });
  }

  document.querySelectorAll('canvas[data-chart]').forEach(draw);
  offerBrowserZone();
})();
