// Comparison pages: filters of the flipped items, and links that reveal hidden ones.
(function(){
  Array.prototype.forEach.call(document.querySelectorAll('section.cmp'), function(sec){
    var bar = sec.querySelector('.filters'); if(!bar) return;
    var dirs = Array.prototype.slice.call(bar.querySelectorAll('input[data-dir]'));
    var bench = bar.querySelector('select.bench'), ex = bar.querySelector('select.ex');
    var search = bar.querySelector('input[type=search]'), count = bar.querySelector('.count');
    var items = Array.prototype.slice.call(sec.querySelectorAll('.flip'));
    function apply(){
      var on = dirs.filter(function(d){return d.checked;}).map(function(d){return d.dataset.dir;});
      var q = search.value.toLowerCase(), n = 0;
      items.forEach(function(it){
        var ok = it.dataset.dir.split(' ').some(function(d){return on.indexOf(d) >= 0;});
        if(ok && bench.value) ok = it.dataset.bench === bench.value;
        if(ok && ex.value) ok = it.dataset.ex.split('|').indexOf(ex.value) >= 0;
        if(ok && q) ok = it.textContent.toLowerCase().indexOf(q) >= 0;
        it.hidden = !ok; if(ok) n++;
      });
      count.textContent = n + ' of ' + items.length + ' flipped items';
    }
    function reveal(){
      var id = decodeURIComponent(location.hash.slice(1));
      var t = id && document.getElementById(id);
      if(t && t.hidden && sec.contains(t)){
        dirs.forEach(function(d){d.checked = true;}); bench.value = ''; ex.value = ''; search.value = '';
        apply(); t.scrollIntoView();
      }
    }
    dirs.forEach(function(d){ d.addEventListener('change', apply); });
    bench.addEventListener('change', apply); ex.addEventListener('change', apply);
    search.addEventListener('input', apply);
    window.addEventListener('hashchange', reveal);
    apply(); reveal();
  });
})();
