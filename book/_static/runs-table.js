/* Sortable, filterable run tables of the nalkit book (the experiments index): no library, no network.
 * A <table class="nalkit-sortable"> sorts by a column when its header is clicked (numbers as numbers; a second
 * click reverses); an <input class="nalkit-filter" data-table="ID"> shows only the rows of table ID whose text
 * contains every word typed. */
(function () {
  "use strict";
  function key(cell) {
    var text = (cell.getAttribute("data-sort") || cell.textContent).trim();
    var number = parseFloat(text.replace(/[^0-9eE.+-]/g, ""));
    return { text: text.toLowerCase(), number: /^[-+]?[0-9.]/.test(text) && !isNaN(number) ? number : null };
  }
  function sortBy(table, col, header) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var down = header.getAttribute("aria-sort") === "ascending";
    rows.sort(function (a, b) {
      var x = key(a.cells[col]), y = key(b.cells[col]);
      var c = (x.number !== null && y.number !== null) ? x.number - y.number : x.text.localeCompare(y.text);
      return down ? -c : c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", down ? "descending" : "ascending");
  }
  function setup() {
    Array.prototype.forEach.call(document.querySelectorAll("table.nalkit-sortable"), function (table) {
      if (!table.tHead || !table.tBodies.length) { return; }
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, col) {
        header.setAttribute("role", "button");
        header.setAttribute("title", "sort by this column");
        header.addEventListener("click", function () { sortBy(table, col, header); });
      });
    });
    Array.prototype.forEach.call(document.querySelectorAll("input.nalkit-filter"), function (input) {
      var table = document.getElementById(input.getAttribute("data-table"));
      var counter = document.getElementById(input.getAttribute("data-table") + "-count");
      if (!table) { return; }
      input.addEventListener("input", function () {
        var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
        var shown = 0;
        Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
          // the cells' texts joined by spaces: textContent alone would run "lambda" and "sym" into "lambdasym"
          var text = Array.prototype.map.call(row.cells, function (c) { return c.textContent; }).join(" ").toLowerCase();
          var keep = words.every(function (w) { return text.indexOf(w) >= 0; });
          row.style.display = keep ? "" : "none";
          shown += keep ? 1 : 0;
        });
        if (counter) { counter.textContent = shown + " of " + table.tBodies[0].rows.length + " runs shown"; }
      });
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", setup); } else { setup(); }
})();
