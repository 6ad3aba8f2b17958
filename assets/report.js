// The item browser of report.html: inflates the packed items and filters them.
(function(){
  // Items are gzip + base64 (see the module docs): inflate, then start.
  var packed = document.getElementById('items').textContent.trim();
  var bin = atob(packed), bytes = new Uint8Array(bin.length);
  for(var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  if(!window.DecompressionStream){
    document.getElementById('count').textContent = 'This browser cannot inflate the item list (needs DecompressionStream); report.json and samples/*.jsonl hold every item.';
    return;
  }
  new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).text().then(function(t){
    var data = JSON.parse(t);
    // Prompts sharing a prefix (fixed few-shot examples) carry its index.
    if(!Array.isArray(data)){
      var P = data.prefixes;
      data = data.items.map(function(it){
        if(it.prompt_prefix !== undefined){ it.prompt = P[it.prompt_prefix] + it.prompt; delete it.prompt_prefix; }
        return it;
      });
    }
    start(data);
    document.documentElement.dataset.ready = '1';
  });
})();
function start(data){
  var list = document.getElementById('list'), count = document.getElementById('count');
  var boxes = Array.prototype.slice.call(document.querySelectorAll('#filters input[data-outcome]'));
  var bench = document.getElementById('bench'), search = document.getElementById('search');
  var more = document.getElementById('more');
  var PAGE = 200, shown = PAGE;
  function el(tag, cls, text){ var e = document.createElement(tag); if(cls) e.className = cls; if(text !== undefined && text !== null) e.textContent = String(text); return e; }
  function section(parent, title, text, open){
    if(text === undefined || text === null || text === '') return;
    var d = el('details'); if(open) d.open = true; d.appendChild(el('summary', null, title)); d.appendChild(el('pre', null, text)); parent.appendChild(d);
  }
  function matches(it){
    var on = boxes.filter(function(b){return b.checked;}).map(function(b){return b.dataset.outcome;});
    if(on.indexOf(it.outcome) < 0) return false;
    if(bench.value && it.benchmark !== bench.value) return false;
    var q = search.value.toLowerCase();
    if(q){ var hay = (it.prompt + '\n' + (it.response||'') + '\n' + (it.id||'')).toLowerCase(); if(hay.indexOf(q) < 0) return false; }
    return true;
  }
  function render(){
    var sel = data.filter(matches);
    count.textContent = sel.length + ' of ' + data.length + ' items';
    list.textContent = '';
    sel.slice(0, shown).forEach(function(it){
      var d = el('div', 'item ' + it.outcome);
      var h = el('h3', null, it.benchmark + ' / ' + it.subset + ' / ' + it.split + ' #' + it.index + (it.repeat != null ? ' repeat ' + it.repeat : '') + (it.id ? ' (' + it.id + ')' : ''));
      h.appendChild(el('span', 'tag', it.outcome.replace('_', ' ')));
      if(it.finish_reason) h.appendChild(el('span', 'tag', 'finish: ' + it.finish_reason));
      if(it.latency_ms !== null && it.latency_ms !== undefined) h.appendChild(el('span', 'tag', Math.round(it.latency_ms) + ' ms'));
      d.appendChild(h);
      var p = el('div', 'muted'); p.textContent = 'gold: ' + it.gold + '   extracted: ' + Object.keys(it.extracted).map(function(k){ return k + '=' + (it.extracted[k] === null ? '(none)' : it.extracted[k]) + (it.verdicts[k] ? ' \u2713' : ' \u2717'); }).join('   ');
      d.appendChild(p);
      // Checklist answers (IFEval: `pass id; fail id` per extractor): one
      // line per instruction, its verdict under each extractor.
      var lists = Object.keys(it.extracted).filter(function(k){ return /^(pass|fail) /.test(it.extracted[k] || ''); });
      if(lists.length){
        var rows = {};
        lists.forEach(function(k){ it.extracted[k].split('; ').forEach(function(x, i){ var id = x.slice(5); rows[i] = rows[i] || [id]; rows[i].push(k + ' ' + (x.slice(0, 4) === 'pass' ? '\u2713' : '\u2717')); }); });
        d.appendChild(el('pre', 'checklist', Object.keys(rows).map(function(i){ return rows[i].join('   '); }).join('\n')));
      }
      if(it.error) d.appendChild(el('pre', null, 'error: ' + it.error));
      section(d, 'prompt', it.prompt, (it.prompt || '').length < 1500);
      section(d, 'response', it.response, true);
      section(d, 'reasoning', it.reasoning, false);
      list.appendChild(d);
    });
    more.style.display = sel.length > shown ? '' : 'none';
  }
  boxes.forEach(function(b){ b.addEventListener('change', function(){ shown = PAGE; render(); }); });
  bench.addEventListener('change', function(){ shown = PAGE; render(); });
  search.addEventListener('input', function(){ shown = PAGE; render(); });
  more.addEventListener('click', function(){ shown += PAGE; render(); });
  render();
}
