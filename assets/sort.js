// Sortable tables (class=sortable): a click on a header sorts the rows by
// that column, numbers by value, text alphabetically; a second click
// reverses. Used by the per-group tables of report.html.
(function(){
  function key(td){
    var t = td ? td.textContent.trim() : '';
    var n = parseFloat(t.replace(/[,%]/g, ''));
    return isNaN(n) || !/^[-+.\d]/.test(t) ? t.toLowerCase() : n;
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function(table){
    var heads = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(heads, function(th, col){
      th.style.cursor = 'pointer';
      th.title = 'sort';
      th.addEventListener('click', function(){
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        var dir = th.dataset.dir === 'asc' ? -1 : 1;
        Array.prototype.forEach.call(heads, function(h){ delete h.dataset.dir; });
        th.dataset.dir = dir === 1 ? 'asc' : 'desc';
        rows.sort(function(a, b){
          var x = key(a.cells[col]), y = key(b.cells[col]);
          if(typeof x !== typeof y) return (typeof x === 'number' ? -1 : 1) * dir;
          return (x < y ? -1 : x > y ? 1 : 0) * dir;
        });
        rows.forEach(function(r){ body.appendChild(r); });
      });
    });
  });
})();
