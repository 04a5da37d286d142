// New alerts as they are published (server-sent events); every value is set as text.
(function () {
  var source = new EventSource(document.getElementById("live-script").dataset.stream);
  var body = document.getElementById("alerts");
  function cell(row, text, href) {
    var td = document.createElement("td");
    if (href) { var a = document.createElement("a"); a.href = href; a.textContent = text; td.appendChild(a); }
    else { td.textContent = text; }
    row.appendChild(td); return td;
  }
  source.onmessage = function (event) {
    var a = JSON.parse(event.data), row = document.createElement("tr");
    cell(row, a.created); cell(row, a.severity); cell(row, a.rule); cell(row, a.kind);
    cell(row, a.title + " — " + a.source); cell(row, a.size + (a.size === 1 ? " report" : " reports"), "/story/" + encodeURIComponent(a.story));
    body.insertBefore(row, body.firstChild);
    var none = document.getElementById("none"); if (none) { none.remove(); }
  };
  source.onerror = function () { document.getElementById("live").textContent = "reconnecting…"; };
  source.onopen = function () { document.getElementById("live").textContent = "live"; };
})();
