// The index of runs: the A/B picker that opens a comparison page.
(function(){
  var info = JSON.parse(document.getElementById('pairs').textContent);
  var pages = info.pages, skipped = info.skipped, runs = info.runs;
  var go = document.getElementById('go'), msg = document.getElementById('pick-msg');
  function sh(p){ return /^[A-Za-z0-9_\/.,:+=@-]+$/.test(p) ? p : "'" + p.replace(/'/g, "'\\''") + "'"; }
  function picked(name){ var e = document.querySelector('input[name=' + name + ']:checked'); return e ? e.value : null; }
  function update(){
    var a = picked('a'), b = picked('b'), href = a !== null && b !== null ? pages[a + '\n' + b] : null;
    go.disabled = !href;
    if(a === null || b === null) msg.textContent = 'pick a baseline (A) and a candidate (B)';
    else if(a === b) msg.textContent = 'pick two different runs';
    else if(!href && skipped[a + '\n' + b]) msg.textContent = 'not generated (more comparable pairs than --max-comparisons); run: bench compare ' + sh(runs[a]) + ' ' + sh(runs[b]) + ' --format html -o compare.html';
    else if(!href) msg.textContent = 'no comparison: the runs are of different kinds or share no benchmark or level';
    else msg.textContent = '';
  }
  Array.prototype.forEach.call(document.querySelectorAll('input[name=a], input[name=b]'), function(r){ r.addEventListener('change', update); });
  go.addEventListener('click', function(){ var a = picked('a'), b = picked('b'); var href = pages[a + '\n' + b]; if(href) location.href = href; });
  update();
})();
