// The offline docs site (tools/docs.py): full-text search over search.json, the "on this page" highlight and the
// static explorers. Plain JavaScript, no library and no network: everything it reads lies next to the pages.
(function () {
  "use strict";

  // ---- search -------------------------------------------------------------------------------------------------
  var index = null, loading = null;

  function loadIndex() {
    // search.json over http(s); from file:// (where fetch is refused) the same data from search_index.js
    if (index) return Promise.resolve(index);
    if (loading) return loading;
    var viaScript = function () {
      return new Promise(function (resolve, reject) {
        if (window.MOL_SEARCH_INDEX) return resolve(window.MOL_SEARCH_INDEX);
        var s = document.createElement("script");
        s.src = "search_index.js";
        s.onload = function () { resolve(window.MOL_SEARCH_INDEX); };
        s.onerror = reject;
        document.head.appendChild(s);
      });
    };
    var viaFetch = location.protocol === "file:" ? Promise.reject(new Error("file"))
      : fetch("search.json").then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); });
    loading = viaFetch.catch(viaScript).then(function (data) { index = data; return data; });
    return loading;
  }

  function count(hay, term) {
    var n = 0, i = hay.indexOf(term);
    while (i !== -1 && n < 5) { n++; i = hay.indexOf(term, i + term.length); }
    return n;
  }

  function search(data, query) {
    var q = query.toLowerCase().trim(), terms = q.split(/\s+/).filter(Boolean), hits = [];
    if (!terms.length) return hits;
    data.pages.forEach(function (page) {
      page.sections.forEach(function (sec) {
        var head = (page.title + " " + sec.heading).toLowerCase(), text = sec.text.toLowerCase(), score = 0;
        for (var i = 0; i < terms.length; i++) {
          var inHead = head.indexOf(terms[i]) !== -1, n = count(text, terms[i]);
          if (!inHead && !n) return;                       // every word must occur
          score += (inHead ? 10 : 0) + n;
        }
        if (terms.length > 1 && (text.indexOf(q) !== -1 || head.indexOf(q) !== -1)) score += 5;  // the phrase itself
        hits.push({ page: page, sec: sec, score: score });
      });
    });
    hits.sort(function (a, b) { return b.score - a.score; });
    var perPage = {}, out = [];
    hits.forEach(function (h) {                           // at most 3 sections of one page, 15 results in all
      perPage[h.page.href] = (perPage[h.page.href] || 0) + 1;
      if (perPage[h.page.href] <= 3 && out.length < 15) out.push(h);
    });
    return out;
  }

  function highlighted(text, terms) {
    // a DOM fragment of `text` with every term wrapped in <mark> (textContent only: the index is never parsed as HTML)
    var frag = document.createDocumentFragment(), low = text.toLowerCase(), pos = 0;
    while (pos < text.length) {
      var best = -1, len = 0;
      terms.forEach(function (t) { var i = low.indexOf(t, pos); if (i !== -1 && (best === -1 || i < best)) { best = i; len = t.length; } });
      if (best === -1) { frag.appendChild(document.createTextNode(text.slice(pos))); break; }
      frag.appendChild(document.createTextNode(text.slice(pos, best)));
      var m = document.createElement("mark"); m.textContent = text.slice(best, best + len); frag.appendChild(m);
      pos = best + len;
    }
    return frag;
  }

  function snippet(text, terms) {
    var low = text.toLowerCase(), at = -1;
    terms.forEach(function (t) { var i = low.indexOf(t); if (i !== -1 && (at === -1 || i < at)) at = i; });
    if (at === -1) return text.slice(0, 140) + (text.length > 140 ? "…" : "");
    var a = Math.max(0, at - 60), b = Math.min(text.length, at + 100);
    return (a > 0 ? "…" : "") + text.slice(a, b) + (b < text.length ? "…" : "");
  }

  function render(box, hits, query) {
    var terms = query.toLowerCase().trim().split(/\s+/).filter(Boolean);
    box.textContent = "";
    if (!hits.length) {
      var none = document.createElement("div"); none.className = "r-none";
      none.textContent = "No page mentions " + query.trim(); box.appendChild(none);
    }
    hits.forEach(function (h) {
      var a = document.createElement("a");
      a.href = h.page.href + (h.sec.id ? "#" + encodeURIComponent(h.sec.id) : "");
      a.setAttribute("data-page", h.page.href);
      var t = document.createElement("span"); t.className = "r-title";
      t.appendChild(highlighted(h.page.title + (h.sec.heading && h.sec.heading !== h.page.title ? " › " + h.sec.heading : ""), terms));
      var s = document.createElement("span"); s.className = "r-snip";
      s.appendChild(highlighted(snippet(h.sec.text, terms), terms));
      a.appendChild(t); a.appendChild(s); box.appendChild(a);
    });
    var r = document.getElementById("mol-search").getBoundingClientRect();   // just below the search box
    box.style.top = Math.round(r.bottom + 4) + "px";
    box.hidden = false;
  }

  function setupSearch() {
    var input = document.getElementById("mol-search"), box = document.getElementById("mol-search-results");
    if (!input || !box) return;
    var selected = -1;
    var links = function () { return box.querySelectorAll("a"); };
    var select = function (i) {
      var ls = links(); if (!ls.length) return;
      selected = (i + ls.length) % ls.length;
      ls.forEach(function (l, j) { l.classList.toggle("selected", j === selected); });
      ls[selected].scrollIntoView({ block: "nearest" });
    };
    var update = function () {
      var q = input.value;
      selected = -1;
      if (!q.trim()) { box.hidden = true; box.textContent = ""; return; }
      loadIndex().then(function (data) { if (input.value === q) render(box, search(data, q), q); })
        .catch(function () { box.textContent = "The search index could not be loaded."; box.hidden = false; });
    };
    input.addEventListener("input", update);
    input.addEventListener("focus", function () { loadIndex().catch(function () {}); if (input.value.trim()) update(); });
    input.addEventListener("keydown", function (e) {
      if (e.key === "ArrowDown") { select(selected + 1); e.preventDefault(); }
      else if (e.key === "ArrowUp") { select(selected - 1); e.preventDefault(); }
      else if (e.key === "Escape") { box.hidden = true; input.blur(); }
      else if (e.key === "Enter") {
        var ls = links(); if (ls.length) location.href = ls[Math.max(0, selected)].href;
        e.preventDefault();
      }
    });
    document.addEventListener("click", function (e) { if (!box.contains(e.target) && e.target !== input) box.hidden = true; });
    document.addEventListener("keydown", function (e) {        // "/" focuses the search box
      if (e.key === "/" && document.activeElement !== input && !/INPUT|TEXTAREA/.test(document.activeElement.tagName)) {
        input.focus(); e.preventDefault();
      }
    });
  }

  // ---- on this page: highlight the section being read --------------------------------------------------------
  function setupToc() {
    var toc = document.getElementById("toc");
    if (!toc) return;
    var links = Array.prototype.slice.call(toc.querySelectorAll("a[href^='#']"));
    var targets = links.map(function (a) { return document.getElementById(decodeURIComponent(a.getAttribute("href").slice(1))); });
    var pending = false;
    var mark = function () {
      pending = false;
      var current = -1;
      targets.forEach(function (t, i) { if (t && t.getBoundingClientRect().top < 90) current = i; });
      links.forEach(function (a, i) { a.classList.toggle("current", i === current); });
    };
    window.addEventListener("scroll", function () { if (!pending) { pending = true; requestAnimationFrame(mark); } });
    mark();
  }

  // ---- static explorers: a slider switching pre-rendered figures ---------------------------------------------
  function setupExplorers() {
    document.querySelectorAll(".mol-static-explorer").forEach(function (box) {
      var frames = JSON.parse(box.getAttribute("data-frames"));
      var slider = box.querySelector("input[type=range]"), img = box.querySelector("img"), cap = box.querySelector(".mol-se-caption");
      var show = function () {
        var f = frames[Number(slider.value)];
        if (!f) return;
        img.src = f.src; img.alt = f.caption; cap.textContent = f.caption;
      };
      slider.addEventListener("input", show);
      show();
    });
  }

  function setupSidebar() {
    // keep the current chapter visible in a long sidebar (scrolling the sidebar only, never the page)
    var nav = document.getElementById("sidebar"), active = nav && nav.querySelector("a.active");
    if (!active) return;
    var top = active.offsetTop;                          // the fixed sidebar is the offsetParent of its links
    if (top + active.offsetHeight > nav.scrollTop + nav.clientHeight) nav.scrollTop = top - nav.clientHeight / 2;
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupSidebar(); setupSearch(); setupToc(); setupExplorers();
  });
})();
