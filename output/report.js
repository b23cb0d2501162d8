// The report's self-check. It draws nothing (the charts are inline SVG);
// it records script errors in the data-script-errors attribute of the html
// element, and once the page is parsed it checks that every chart is laid
// out with a non-empty drawing and as many visible data marks as its
// data-points says, and writes the verdict in attributes of the body:
// data-charts-ok, data-chart-count, data-chart-errors.
// A headless browser's --dump-dom shows those attributes to the tests.
(function () {
  'use strict';
  var root = document.documentElement;
  var errors = [];
  function noteError(msg) {
    errors.push(String(msg));
    root.setAttribute('data-script-errors', errors.join(' | '));
  }
  root.setAttribute('data-script-errors', '');
  window.addEventListener('error', function (e) {
    noteError((e.message || 'error') + (e.filename ? ' at ' + e.filename + ':' + e.lineno : ''));
  });
  window.addEventListener('unhandledrejection', function (e) {
    noteError('unhandled rejection: ' + e.reason);
  });

  function checkChart(svg) {
    var id = svg.id || '(a chart without id)';
    var want = parseInt(svg.getAttribute('data-points'), 10);
    if (!(want > 0)) {
      return id + ': no data points';
    }
    var box = svg.getBoundingClientRect();
    if (!(box.width > 0 && box.height > 0)) {
      return id + ': not laid out (' + box.width + 'x' + box.height + ')';
    }
    var drawing = svg.getBBox();
    if (!(drawing.width > 0 && drawing.height > 0)) {
      return id + ': empty drawing';
    }
    var marks = svg.querySelectorAll('.mark');
    var drawn = 0;
    for (var i = 0; i < marks.length; i++) {
      var b = marks[i].getBBox();
      if (b.width > 0 && b.height > 0) {
        drawn++;
      }
    }
    if (drawn !== want) {
      return id + ': ' + drawn + ' of ' + want + ' data marks drawn';
    }
    return '';
  }

  function check() {
    var body = document.body;
    var charts = document.querySelectorAll('svg.chart');
    var problems = [];
    for (var i = 0; i < charts.length; i++) {
      try {
        var p = checkChart(charts[i]);
        if (p) {
          problems.push(p);
        }
      } catch (err) {
        problems.push((charts[i].id || 'chart') + ': ' + err);
      }
    }
    body.setAttribute('data-chart-count', String(charts.length));
    body.setAttribute('data-chart-errors', problems.join(' | '));
    body.setAttribute('data-charts-ok', String(charts.length > 0 && problems.length === 0 && errors.length === 0));
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', check);
  } else {
    check();
  }
})();
