// The run browser's logic: filters, search, paging, the problem panel and the DuckDB queries.
// Data comes from the JSON block #lt-data written by longthought.results.browser; every text is
// shown with x-text (never as HTML): model outputs are untrusted.
"use strict";

document.addEventListener("alpine:init", () => {
  const D = JSON.parse(document.getElementById("lt-data").textContent);
  const PAGE = 50;
  const sq = (s) => "'" + String(s).replace(/'/g, "''") + "'";
  const words = (q) => q.toLowerCase().split(/\s+/).filter((w) => w.length > 0);
  const uniq = (xs) => [...new Set(xs.filter((x) => x !== "" && x != null))].sort();
  const roles = Object.fromEntries(D.models.map((m) => [m.name, m.role]));
  const firstOf = (role) => (D.models.find((m) => m.role === role) || {}).name || "";

  const traceHay = new Map();
  const hayOfTrace = (t) => {
    if (!traceHay.has(t.id)) {
      const o = t.outcomes.map((x) => [x.dataset, x.filter, x.reason, x.detail].join(" "));
      traceHay.set(t.id, [t.id, t.problem, t.gold, t.thinking, t.answer, t.error || "", ...o]
        .join("\n").toLowerCase());
    }
    return traceHay.get(t.id);
  };
  const evalHay = new Map();
  const hayOfProblem = (p) => {
    if (!evalHay.has(p.key)) {
      const s = p.samples.map((x) => [x.model, x.thinking, x.answer, x.extracted].join(" "));
      evalHay.set(p.key, [p.key, p.problem, p.gold, ...s].join("\n").toLowerCase());
    }
    return evalHay.get(p.key);
  };
  const tracesByProblem = new Map();
  for (const t of D.traces) {
    const k = t.pool + "/" + t.pid;
    if (!tracesByProblem.has(k)) tracesByProblem.set(k, []);
    tracesByProblem.get(k).push(t);
  }
  const problemsByKey = new Map(D.evaluation.problems.map((p) => [p.key, p]));
  const quart = D.trace_stats.quartiles || [0, 0];

  Alpine.data("ltBrowser", () => ({
    tab: "traces",
    page: 0,
    sel: null, // {kind: "trace" | "eval", key}
    tf: { pool: "", family: "", task: "", outcome: "", length: "", q: "" },
    ef: { bench: "", family: "", budget: "", a: "", b: "", aState: "", bState: "", length: "",
          q: "" },
    pools: uniq(D.traces.map((t) => t.pool)),
    traceFamilies: uniq(D.traces.map((t) => t.family)),
    tasks: uniq(D.traces.map((t) => t.task)),
    filters: uniq(D.traces.flatMap((t) => t.outcomes.filter((o) => !o.kept).map((o) => o.filter))),
    benches: uniq(D.evaluation.problems.map((p) => p.bench)),
    evalFamilies: uniq(D.evaluation.problems.map((p) => p.family)),
    models: D.models.map((m) => m.name),
    budgets: D.budgets,
    stats: D.trace_stats,
    estats: D.eval_stats,
    settings: D.settings,
    quart: quart,
    colors: D.colors || {},

    init() {
      this.ef.a = firstOf("teacher") || this.models[0] || "";
      this.ef.b = firstOf("student") || this.models.find((m) => m !== this.ef.a) || "";
      for (const k of ["tf", "ef", "tab"]) this.$watch(k, () => { this.page = 0; });
    },

    // ---- traces ----------------------------------------------------------------------------
    outcomeLabel(t) {
      const rej = t.outcomes.filter((o) => !o.kept);
      if (rej.length) return "rejected";
      if (t.outcomes.length) return "kept";
      return t.status === "ok" ? "not curated" : t.status;
    },
    outcomeClass(t) {
      const l = this.outcomeLabel(t);
      return l === "kept" ? "ok" : l === "rejected" ? "bad" : "muted";
    },
    traceMatches(t) {
      const f = this.tf;
      if (f.pool && t.pool !== f.pool) return false;
      if (f.family && t.family !== f.family) return false;
      if (f.task && t.task !== f.task) return false;
      if (f.outcome === "kept" && !(t.outcomes.length && t.outcomes.every((o) => o.kept)))
        return false;
      if (f.outcome === "rejected" && !t.outcomes.some((o) => !o.kept)) return false;
      if (f.outcome === "failed" && t.status === "ok") return false;
      if (f.outcome.startsWith("filter:") &&
          !t.outcomes.some((o) => !o.kept && o.filter === f.outcome.slice(7))) return false;
      if (f.length === "long" && !(t.thought >= quart[1])) return false;
      if (f.length === "short" && !(t.thought <= quart[0])) return false;
      const ws = words(f.q);
      if (ws.length) {
        const hay = hayOfTrace(t);
        if (!ws.every((w) => hay.includes(w))) return false;
      }
      return true;
    },
    get traceRows() { return D.traces.filter((t) => this.traceMatches(t)); },
    traceSQL() {
      const f = this.tf, w = [];
      if (f.pool) w.push("k.pool = " + sq(f.pool));
      if (f.family) w.push("p.family = " + sq(f.family));
      if (f.task) w.push("t.task = " + sq(f.task));
      if (f.outcome === "kept") w.push("c.kept");
      if (f.outcome === "rejected") w.push("NOT c.kept");
      if (f.outcome === "failed") w.push("t.status <> 'ok'");
      if (f.outcome.startsWith("filter:")) w.push("c.filter = " + sq(f.outcome.slice(7)));
      const thought = "coalesce(t.reasoning_tokens, t.completion_tokens)";
      if (f.length === "long") w.push(thought + " >= " + quart[1]);
      if (f.length === "short") w.push(thought + " <= " + quart[0]);
      for (const word of words(f.q))
        w.push("contains(lower(concat_ws(' ', t.trace_id, t.problem, t.content, " +
               "t.reasoning_content, c.reason, c.detail)), " + sq(word) + ")");
      return "-- duckdb results/results.duckdb\n" +
        "SELECT t.trace_id, k.pool, p.family, c.dataset, c.kept, c.filter, c.reason, c.detail,\n" +
        "       " + thought + " AS thought_tokens, t.cost_usd, t.content\n" +
        "FROM traces t\nJOIN tasks k USING (task)\n" +
        "LEFT JOIN problems p ON p.kind = 'pool' AND p.problem_set = k.pool " +
        "AND p.problem_id = t.problem_id\n" +
        "LEFT JOIN curation c USING (trace_id)\n" +
        (w.length ? "WHERE " + w.join("\n  AND ") + "\n" : "") + "ORDER BY t.trace_id;";
    },

    // ---- evaluation ------------------------------------------------------------------------
    stat(p, model) {
      const s = (p.stats[model] || {})[this.ef.budget];
      return s ? { n: s[0], c: s[1], think: s[2], out: s[3] } : null;
    },
    right(p, model) { // at least half of the model's samples correct
      const s = this.stat(p, model);
      return s ? 2 * s.c >= s.n : null;
    },
    statText(p, model) {
      const s = this.stat(p, model);
      return s ? s.c + "/" + s.n : "–";
    },
    statClass(p, model) {
      const r = this.right(p, model);
      return r === null ? "muted" : r ? "ok" : "bad";
    },
    get evalQuart() {
      const xs = D.evaluation.problems.map((p) => this.stat(p, this.ef.a))
        .filter((s) => s).map((s) => s.think).sort((x, y) => x - y);
      if (!xs.length) return [0, 0];
      const at = (q) => xs[Math.min(xs.length - 1, Math.floor(q * (xs.length - 1)))];
      return [at(0.25), at(0.75)];
    },
    evalMatches(p, q) {
      const f = this.ef;
      if (f.bench && p.bench !== f.bench) return false;
      if (f.family && p.family !== f.family) return false;
      for (const [m, want] of [[f.a, f.aState], [f.b, f.bState]]) {
        if (!want) continue;
        const r = this.right(p, m);
        if (r === null || (want === "right") !== r) return false;
      }
      if (f.length) {
        const s = this.stat(p, f.a);
        if (!s) return false;
        if (f.length === "long" && !(s.think >= q[1])) return false;
        if (f.length === "short" && !(s.think <= q[0])) return false;
      }
      const ws = words(f.q);
      if (ws.length) {
        const hay = hayOfProblem(p);
        if (!ws.every((w) => hay.includes(w))) return false;
      }
      return true;
    },
    get evalRows() {
      const q = this.evalQuart;
      return D.evaluation.problems.filter((p) => this.evalMatches(p, q));
    },
    relation(aState, bState) { this.ef.aState = aState; this.ef.bState = bState; },
    evalSQL() {
      const f = this.ef, w = [];
      const budget = f.budget === "" ? "budget IS NULL" : "budget = " + Number(f.budget);
      w.push("a.model = " + sq(f.a), "b.model = " + sq(f.b));
      if (f.bench) w.push("a.benchmark = " + sq(f.bench));
      if (f.family) w.push("p.family = " + sq(f.family));
      if (f.aState) w.push((f.aState === "right" ? "" : "NOT ") + "a.is_right");
      if (f.bState) w.push((f.bState === "right" ? "" : "NOT ") + "b.is_right");
      const q = this.evalQuart;
      if (f.length === "long") w.push("a.thinking >= " + q[1]);
      if (f.length === "short") w.push("a.thinking <= " + q[0]);
      for (const word of words(f.q))
        w.push("(contains(lower(p.problem), " + sq(word) + ") OR EXISTS (SELECT 1 FROM " +
               "generations g WHERE g.benchmark = a.benchmark AND g.problem_id = a.problem_id " +
               "AND g.model IN (a.model, b.model) AND contains(lower(g.output), " + sq(word) +
               ")))");
      return "-- duckdb results/results.duckdb    (right: at least half of the samples correct)\n" +
        "WITH s AS (\n  SELECT benchmark, problem_id, model, count(*) AS n,\n" +
        "         count(*) FILTER (WHERE correct) AS c, 2 * c >= n AS is_right,\n" +
        "         avg(coalesce(thinking_tokens, 0)) AS thinking\n" +
        "  FROM generations WHERE " + budget + " GROUP BY ALL)\n" +
        "SELECT a.benchmark, a.problem_id, p.family, a.c || '/' || a.n AS a_correct,\n" +
        "       b.c || '/' || b.n AS b_correct, p.problem, p.answer\n" +
        "FROM s a JOIN s b USING (benchmark, problem_id)\n" +
        "LEFT JOIN problems p ON p.kind = 'benchmark' AND p.problem_set = a.benchmark " +
        "AND p.problem_id = a.problem_id\n" +
        "WHERE " + w.join("\n  AND ") + "\nORDER BY a.benchmark, a.problem_id;";
    },

    // ---- paging and the problem panel -------------------------------------------------------
    pageOf(rows) { return rows.slice(this.page * PAGE, (this.page + 1) * PAGE); },
    pages(rows) { return Math.max(1, Math.ceil(rows.length / PAGE)); },
    open(kind, key) { this.sel = { kind, key }; },
    get trace() {
      return this.sel && this.sel.kind === "trace" ? D.traces.find((t) => t.id === this.sel.key)
        : null;
    },
    get problemTraces() {
      const t = this.trace;
      return t ? tracesByProblem.get(t.pool + "/" + t.pid) || [] : [];
    },
    get evalProblem() {
      return this.sel && this.sel.kind === "eval" ? problemsByKey.get(this.sel.key) : null;
    },
    samplesOf(p, model) {
      const b = this.ef.budget === "" ? null : Number(this.ef.budget);
      return p ? p.samples.filter((s) => s.model === model && s.budget === b) : [];
    },
    traceDetailSQL(t) {
      return "SELECT * FROM traces WHERE trace_id = " + sq(t.id) + ";\n" +
        "SELECT * FROM curation WHERE trace_id = " + sq(t.id) + ";\n" +
        "SELECT * FROM traces WHERE task = " + sq(t.task) + " AND problem_id = " + sq(t.pid) + ";";
    },
    evalDetailSQL(p) {
      return "SELECT model, budget, sample_index, correct, verdict, extracted_answer,\n" +
        "       output_tokens, thinking_tokens, output\nFROM generations\nWHERE benchmark = " +
        sq(p.bench) + " AND problem_id = " + sq(p.pid) +
        "\nORDER BY model, budget NULLS FIRST, sample_index;";
    },
    budgetLabel(b) { return b === null || b === "" ? "no cap" : "budget " + b; },
    verdictText(s) {
      return (s.correct === true ? "✓ correct" : s.correct === false ? "✗ " + s.verdict
        : "? " + s.verdict);
    },
    fmt(x, digits) {
      if (x === null || x === undefined) return "–";
      return Number(x).toLocaleString("en-US", { maximumFractionDigits: digits || 0 });
    },
    color(m) { return this.colors[m] || "#555"; },
    copy(text) { if (navigator.clipboard) navigator.clipboard.writeText(text).catch(() => {}); },
  }));
});
