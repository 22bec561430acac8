// The dashboard's pages. Each view has load(params, state), which calls the API and returns
// the data, and render(data, params, ctx), which returns the page's DOM from that data. ctx
// carries the page state that outlives a refresh and the actions that change state.
"use strict";

(function (t) {
  const { el, badge, labelChips, formatDuration, formatRelative, formatTime, formatPercent, formatBytes } = t;

  const SILENCE_SECONDS = 2 * 3600;
  const GRAPH_RANGES = ["1h", "6h", "1d", "7d"];

  const HEALTH = {
    up: { word: "UP", colour: "green" },
    down: { word: "DOWN", colour: "red" },
    unknown: { word: "UNKNOWN", colour: "grey" },
  };

  const ALERT_STATE = {
    active: { word: "FIRING", colour: "red" },
    pending: { word: "PENDING", colour: "amber" },
    silenced: { word: "SILENCED", colour: "grey" },
    inhibited: { word: "INHIBITED", colour: "grey" },
    acknowledged: { word: "ACKNOWLEDGED", colour: "amber" },
    resolved: { word: "RESOLVED", colour: "green" },
  };

  const SILENCE_STATE = {
    active: { word: "ACTIVE", colour: "amber" },
    pending: { word: "PENDING", colour: "grey" },
    expired: { word: "EXPIRED", colour: "grey" },
  };

  function lookup(table, key) {
    return table[key] || { word: String(key || "unknown").toUpperCase(), colour: "grey" };
  }

  function probeHref(name) {
    return "#/probe/" + encodeURIComponent(name);
  }

  function probeCard(p) {
    const health = lookup(HEALTH, p.health);
    const run = p.lastRun || {};
    return el("article", { class: "card " + health.colour, "data-probe": p.name },
      el("div", { class: "card-head" },
        el("a", { class: "card-title", href: probeHref(p.name), text: p.name }),
        badge(health.word, health.colour)),
      el("div", { class: "meta" }, p.type + " · " + (p.target || "")),
      el("div", { class: "meta" },
        "latency " + formatDuration(run.durationSeconds) + " · last run " + formatRelative(run.time)),
      run.reason ? el("div", { class: "reason", text: "Reason: " + run.reason }) : null,
      labelChips(p.labels));
  }

  function countBy(items, key) {
    const counts = {};
    for (const item of items) counts[key(item)] = (counts[key(item)] || 0) + 1;
    return counts;
  }

  function groupProbes(probes, groupBy) {
    const groups = new Map();
    for (const p of probes) {
      const value = groupBy === "type" ? p.type : (p.labels || {})[groupBy];
      const name = groupBy === "type" ? "type " + value
        : value === undefined ? "no " + groupBy + " label" : groupBy + "=" + value;
      if (!groups.has(name)) groups.set(name, []);
      groups.get(name).push(p);
    }
    const order = { down: 0, unknown: 1, up: 2 };
    for (const list of groups.values()) {
      list.sort((a, b) => (order[a.health] ?? 1) - (order[b.health] ?? 1) || a.name.localeCompare(b.name));
    }
    return [...groups.entries()].sort((a, b) => a[0].localeCompare(b[0]));
  }

  const overview = {
    title: "Overview",
    async load() {
      const [probes, alerts] = await Promise.all([t.api("/probes"), t.api("/alerts")]);
      return { probes, alerts };
    },
    render(data, params, ctx) {
      const probes = data.probes || [];
      const health = countBy(probes, (p) => p.health);
      const firing = (data.alerts || []).filter((a) => a.state === "active").length;
      const labelNames = [...new Set(probes.flatMap((p) => Object.keys(p.labels || {})))].sort();
      const groupBy = ctx.state.groupBy === "type" || labelNames.includes(ctx.state.groupBy)
        ? ctx.state.groupBy : "type";

      const select = el("select", {
        id: "group-by",
        onchange: (e) => { ctx.state.groupBy = e.target.value; ctx.rerender(); },
      }, ["type", ...labelNames].map((n) => el("option", { value: n, selected: n === groupBy, text: n })));

      const page = el("section", {},
        el("h1", { text: "Probes" }),
        el("div", { class: "summary" },
          badge((health.down || 0) + " DOWN", health.down ? "red" : "grey"),
          badge((health.up || 0) + " UP", "green"),
          health.unknown ? badge(health.unknown + " UNKNOWN", "grey") : null,
          el("a", { href: "#/alerts" }, badge(firing + " FIRING", firing ? "red" : "grey"))),
        el("div", { class: "controls" }, el("label", { for: "group-by", text: "Group by" }), select));
      if (probes.length === 0) {
        page.append(el("p", { class: "empty", text: "No probes are configured." }));
        return page;
      }
      for (const [name, list] of groupProbes(probes, groupBy)) {
        page.append(el("h2", { text: name + " (" + list.length + ")" }),
          el("div", { class: "cards" }, list.map(probeCard)));
      }
      return page;
    },
  };

  function alertCard(a, ctx) {
    const state = lookup(ALERT_STATE, a.state);
    const name = (a.labels && a.labels.alertname) || a.rule;
    const summary = a.annotations && (a.annotations.summary || a.annotations.description);
    const canAct = a.state === "active" || a.state === "acknowledged";
    const notes = [];
    if (a.silencedBy && a.silencedBy.length) notes.push("silenced by " + [].concat(a.silencedBy).join(", "));
    if (a.inhibitedBy && a.inhibitedBy.length) notes.push("inhibited by " + [].concat(a.inhibitedBy).join(", "));
    if (a.ack) notes.push("acknowledged by " + (a.ack.createdBy || "someone") + (a.ack.comment ? ": " + a.ack.comment : ""));
    return el("article", { class: "card " + state.colour, "data-fingerprint": a.fingerprint || "" },
      el("div", { class: "card-head" },
        el("span", { class: "card-title", text: name }), badge(state.word, state.colour)),
      summary ? el("div", { class: "reason", text: summary }) : null,
      el("div", { class: "meta" }, "rule " + a.rule + " · since " + formatRelative(a.startsAt)),
      notes.length ? el("div", { class: "meta", text: notes.join(" · ") }) : null,
      labelChips(a.labels, ["alertname"]),
      canAct ? el("div", { class: "actions" },
        el("button", { type: "button", class: "silence", onclick: (e) => ctx.act(e.target, () => silenceAlert(a)) },
          "Silence 2 h"),
        a.state === "active" && a.fingerprint ? el("button", {
          type: "button", class: "ghost acknowledge",
          onclick: (e) => ctx.act(e.target, () => acknowledgeAlert(a)),
        }, "Acknowledge") : null) : null);
  }

  async function silenceAlert(a) {
    const matchers = Object.entries(a.labels || {}).map(([name, value]) =>
      ({ name, value, isRegex: false, isEqual: true }));
    const data = await t.api("/silences", {
      method: "POST",
      auth: true,
      body: {
        matchers,
        endsAt: new Date(Date.now() + SILENCE_SECONDS * 1000).toISOString(),
        createdBy: "dashboard",
        comment: "Silenced from the dashboard for 2 h",
      },
    });
    return "Silence " + data.silenceID + " created for 2 h.";
  }

  async function acknowledgeAlert(a) {
    await t.api("/acks", {
      method: "POST",
      auth: true,
      body: { rule: a.rule, fingerprint: a.fingerprint, createdBy: "dashboard", comment: "Acknowledged from the dashboard" },
    });
    return "Alert " + a.rule + " acknowledged.";
  }

  const alerts = {
    title: "Alerts",
    async load() {
      return t.api("/alerts");
    },
    render(list, params, ctx) {
      const order = { active: 0, acknowledged: 1, pending: 2, silenced: 3, inhibited: 4, resolved: 5 };
      const sorted = [...(list || [])].sort((a, b) => (order[a.state] ?? 9) - (order[b.state] ?? 9));
      const page = el("section", {}, el("h1", { text: "Alerts" }));
      if (sorted.length === 0) {
        page.append(el("p", { class: "empty", text: "No alerts: nothing is firing or pending." }));
        return page;
      }
      page.append(el("div", { class: "cards" }, sorted.map((a) => alertCard(a, ctx))));
      return page;
    },
  };

  const MATCHER_OPERATORS = { "true,false": "=", "false,false": "!=", "true,true": "=~", "false,true": "!~" };

  function matcherText(m) {
    const op = MATCHER_OPERATORS[[m.isEqual !== false, !!m.isRegex].join()];
    return m.name + op + JSON.stringify(m.value);
  }

  function silenceCard(s, ctx) {
    const state = lookup(SILENCE_STATE, s.status && s.status.state);
    const expired = s.status && s.status.state === "expired";
    return el("article", { class: "card " + state.colour, "data-silence": s.id },
      el("div", { class: "card-head" },
        el("span", { class: "card-title", text: s.comment || "(no comment)" }), badge(state.word, state.colour)),
      el("div", { class: "labels" }, (s.matchers || []).map((m) => el("span", { class: "label", text: matcherText(m) }))),
      el("div", { class: "meta" },
        "by " + (s.createdBy || "?") + " · " + (expired ? "ended " : "ends ") + formatRelative(s.endsAt) +
        " (" + formatTime(s.endsAt) + ")"),
      el("div", { class: "meta", text: "id " + s.id }),
      expired ? null : el("div", { class: "actions" },
        el("button", {
          type: "button", class: "ghost expire",
          onclick: (e) => ctx.act(e.target, async () => {
            await t.api("/silences/" + encodeURIComponent(s.id), { method: "DELETE", auth: true });
            return "Silence " + s.id + " expired.";
          }),
        }, "Expire")));
  }

  const silences = {
    title: "Silences",
    async load() {
      return t.api("/silences");
    },
    render(list, params, ctx) {
      const all = list || [];
      const current = all.filter((s) => !(s.status && s.status.state === "expired"));
      const expired = all.filter((s) => s.status && s.status.state === "expired")
        .sort((a, b) => Date.parse(b.endsAt) - Date.parse(a.endsAt)).slice(0, 20);
      const page = el("section", {}, el("h1", { text: "Silences" }));
      page.append(current.length ? el("div", { class: "cards" }, current.map((s) => silenceCard(s, ctx)))
        : el("p", { class: "empty", text: "No active or pending silences." }));
      if (expired.length) {
        page.append(el("h2", { text: "Recently expired" }),
          el("div", { class: "cards" }, expired.map((s) => silenceCard(s, ctx))));
      }
      return page;
    },
  };

  function budgetState(remaining) {
    if (remaining === null || remaining === undefined) return { word: "NO DATA", colour: "grey" };
    if (remaining <= 0) return { word: "EXHAUSTED", colour: "red" };
    if (remaining < 0.25) return { word: "LOW", colour: "amber" };
    return { word: "OK", colour: "green" };
  }

  function burnRateItem(b) {
    if (b.rate === null || b.rate === undefined) return el("li", {}, b.window + ": no data");
    const fast = b.rate > 1;
    return el("li", {}, b.window + ": " + b.rate.toFixed(2) + "× ",
      fast ? badge("ABOVE 1", "amber") : badge("WITHIN BUDGET", "green"));
  }

  const slos = {
    title: "SLOs",
    async load() {
      return t.api("/slos");
    },
    render(list) {
      const page = el("section", {}, el("h1", { text: "Service level objectives" }));
      if (!list || list.length === 0) {
        page.append(el("p", { class: "empty", text: "No SLOs are defined in the rule files." }));
        return page;
      }
      page.append(el("div", { class: "cards" }, list.map((s) => {
        const state = budgetState(s.budgetRemaining);
        const remaining = s.budgetRemaining;
        return el("article", { class: "card " + state.colour, "data-slo": s.name },
          el("div", { class: "card-head" }, el("span", { class: "card-title", text: s.name }), badge(state.word, state.colour)),
          el("div", { class: "meta" },
            "objective " + formatPercent(s.objective) + " over " + formatDuration(s.periodSeconds) +
            (s.probe ? " · probe " : ""), s.probe ? el("a", { href: probeHref(s.probe), text: s.probe }) : null),
          el("div", { class: "reason" }, "SLI " + formatPercent(s.sliRatio) + " · budget remaining " + formatPercent(remaining)),
          remaining === null || remaining === undefined ? null
            : el("meter", { min: 0, max: 1, low: 0.25, high: 0.5, optimum: 1, value: Math.max(0, Math.min(1, remaining)) }),
          el("div", { class: "meta", text: "Burn rates (1 uses the budget exactly over the period):" }),
          el("ul", {}, (s.burnRates || []).map(burnRateItem)),
          labelChips(s.labels));
      })));
      return page;
    },
  };

  // The graph is requested at about the width it is shown, within the API's 100..4000.
  // query is the /graph query without start, width and height, such as "probe=web".
  function graphImage(query, alt, range) {
    const main = document.getElementById("main");
    const width = Math.max(300, Math.min(1200, Math.round(((main && main.clientWidth) || 800) / 50) * 50 - 40));
    const height = width < 500 ? 220 : 300;
    const src = "/graph?" + query + "&start=-" + range + "&width=" + width + "&height=" + height;
    const failed = el("p", { class: "empty", hidden: true,
      text: "The graph could not be drawn: there may be no archived data yet." });
    const img = el("img", {
      src, width, height, alt: alt + " over the last " + range,
      onerror: () => { img.hidden = true; failed.hidden = false; },
    });
    return el("div", { class: "graph" }, img, failed);
  }

  function chosenRange(ctx) {
    return GRAPH_RANGES.includes(ctx.state.range) ? ctx.state.range : "1h";
  }

  function rangePicker(range, ctx) {
    return el("div", { class: "controls", role: "group", "aria-label": "Time range" },
      el("span", { text: "Range" }),
      GRAPH_RANGES.map((r) => el("button", {
        type: "button", class: r === range ? "chosen range" : "ghost range", "aria-pressed": r === range ? "true" : "false",
        "data-range": r, onclick: () => { ctx.state.range = r; ctx.rerender(); },
      }, r)));
  }

  const probe = {
    title: "Probe",
    async load(params) {
      const name = params.name;
      const filter = encodeURIComponent("probe=" + JSON.stringify(name));
      const [p, alertList] = await Promise.all([
        t.api("/probes/" + encodeURIComponent(name)),
        t.api("/alerts?filter=" + filter),
      ]);
      return { probe: p, alerts: alertList };
    },
    render(data, params, ctx) {
      const p = data.probe;
      const health = lookup(HEALTH, p.health);
      const run = p.lastRun || {};
      const range = chosenRange(ctx);
      const facts = [
        ["State", badge(health.word, health.colour)],
        ["Type", p.type],
        ["Target", p.target || "–"],
        ["Interval", formatDuration(p.intervalSeconds)],
        ["Timeout", formatDuration(p.timeoutSeconds)],
        ["Latency", formatDuration(run.durationSeconds)],
        ["Last run", run.time ? formatRelative(run.time) + " (" + (run.status || "?") + ")" : "–"],
        ["Last reason", run.reason || "–"],
        ["State since", formatTime(p.lastStateChange)],
        ["Runs / failures", (p.runs ?? "–") + " / " + (p.failures ?? "–")],
      ];
      const active = (data.alerts || []).filter((a) => a.state !== "resolved");
      return el("section", {},
        el("p", {}, el("a", { href: "#/", text: "← Overview" })),
        el("h1", {}, "Probe " + p.name + " ", badge(health.word, health.colour)),
        el("article", { class: "card " + health.colour },
          el("dl", { class: "facts" }, facts.map(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)])),
          labelChips(p.labels)),
        rangePicker(range, ctx),
        graphImage("probe=" + encodeURIComponent(p.name), "Run duration and failures of probe " + p.name, range),
        el("h2", { text: "Alerts of this probe" }),
        active.length ? el("div", { class: "cards" }, active.map((a) => alertCard(a, ctx)))
          : el("p", { class: "empty", text: "None." }));
    },
  };

  // Runs an instant query and returns its vector as [{ labels, value }] with numeric values.
  async function instant(expr) {
    const data = await t.api("/query?query=" + encodeURIComponent(expr));
    return (data.result || []).map((r) => ({ labels: r.metric || {}, value: Number(r.value[1]) }));
  }

  function firstValue(vector) {
    return vector.length ? vector[0].value : null;
  }

  function selectorString(value) {
    return JSON.stringify(String(value));
  }

  // Share of space left on a filesystem, as a word and a colour.
  function spaceState(availRatio) {
    if (availRatio === null || !isFinite(availRatio)) return { word: "UNKNOWN", colour: "grey" };
    if (availRatio < 0.05) return { word: "FULL", colour: "red" };
    if (availRatio < 0.15) return { word: "LOW", colour: "amber" };
    return { word: "OK", colour: "green" };
  }

  function cpuState(busy) {
    if (busy === null) return { word: "NO DATA", colour: "grey" };
    if (busy >= 0.9) return { word: "BUSY", colour: "red" };
    if (busy >= 0.7) return { word: "HIGH", colour: "amber" };
    return { word: "OK", colour: "green" };
  }

  function dataTable(className, headings, rows) {
    return el("div", { class: "table-wrap" },
      el("table", { class: "data " + className },
        el("thead", {}, el("tr", {}, headings.map((h) => el("th", { scope: "col", text: h })))),
        el("tbody", {}, rows)));
  }

  // Network rates are irate() over the probe's last two runs: the in-memory window always
  // keeps the sample before the latest, so they need no rule that reads the counters. The
  // range only bounds how far back that earlier run may be.
  const NETWORK_RATE_WINDOW = "5m";

  // Reads one host probe's figures with instant queries on its series.
  async function loadHostProbe(p) {
    const selector = "{probe=" + selectorString(p.name) + "}";
    const cpuSelector = "{probe=" + selectorString(p.name) + ",cpu=\"all\"}";
    const exprs = {
      busy: "host_cpu_busy_ratio" + cpuSelector,
      load1: "node_load1" + selector,
      load5: "node_load5" + selector,
      load15: "node_load15" + selector,
      memTotal: "node_memory_MemTotal_bytes" + selector,
      memAvailable: "node_memory_MemAvailable_bytes" + selector,
      fsSize: "node_filesystem_size_bytes" + selector,
      fsAvail: "node_filesystem_avail_bytes" + selector,
      rx: "irate(node_network_receive_bytes_total" + selector + "[" + NETWORK_RATE_WINDOW + "])",
      tx: "irate(node_network_transmit_bytes_total" + selector + "[" + NETWORK_RATE_WINDOW + "])",
    };
    const keys = Object.keys(exprs);
    const vectors = await Promise.all(keys.map((k) => instant(exprs[k])));
    const figures = { probe: p };
    keys.forEach((k, i) => { figures[k] = vectors[i]; });
    return figures;
  }

  function filesystemRows(figures) {
    // Keyed by device and mount point, because two mounts may stack on one mount point.
    const key = (labels) => labels.device + "\n" + labels.mountpoint;
    const avail = new Map(figures.fsAvail.map((r) => [key(r.labels), r.value]));
    return [...figures.fsSize].sort((a, b) => String(a.labels.mountpoint).localeCompare(String(b.labels.mountpoint)))
      .map((r) => {
        const left = avail.has(key(r.labels)) ? avail.get(key(r.labels)) : null;
        const ratio = left === null || r.value <= 0 ? null : left / r.value;
        const state = spaceState(ratio);
        return el("tr", { "data-mountpoint": r.labels.mountpoint },
          el("td", { text: r.labels.mountpoint }),
          el("td", { class: "meta-cell", text: (r.labels.device || "?") + " · " + (r.labels.fstype || "?") }),
          el("td", { class: "num", text: formatBytes(r.value) }),
          el("td", { class: "num", text: formatBytes(left) }),
          el("td", { class: "num" }, formatPercent(ratio) + " ", badge(state.word, state.colour)));
      });
  }

  function networkRows(figures) {
    const tx = new Map(figures.tx.map((r) => [r.labels.device, r.value]));
    return [...figures.rx].sort((a, b) => String(a.labels.device).localeCompare(String(b.labels.device)))
      .map((r) => el("tr", { "data-interface": r.labels.device },
        el("td", { text: r.labels.device }),
        el("td", { class: "num", text: formatBytes(r.value) + "/s" }),
        el("td", { class: "num", text: tx.has(r.labels.device) ? formatBytes(tx.get(r.labels.device)) + "/s" : "–" })));
  }

  function hostSection(figures, range) {
    const p = figures.probe;
    const health = lookup(HEALTH, p.health);
    const busy = firstValue(figures.busy);
    const cpu = cpuState(busy);
    const load = [firstValue(figures.load1), firstValue(figures.load5), firstValue(figures.load15)];
    const total = firstValue(figures.memTotal);
    const available = firstValue(figures.memAvailable);
    const used = total === null || available === null ? null : total - available;
    const loadText = load.map((v) => (v === null ? "–" : v.toFixed(2))).join(" / ");

    const facts = [
      ["Probe", el("a", { href: probeHref(p.name), text: p.name }), " ", badge(health.word, health.colour)],
      ["CPU busy", formatPercent(busy), " ", badge(cpu.word, cpu.colour)],
      ["Load 1 / 5 / 15 min", el("span", { "data-figure": "load", text: loadText })],
      ["Memory used", formatBytes(used) + (total ? " of " + formatBytes(total) + " (" + formatPercent(used / total) + ")" : "")],
      ["Memory available", formatBytes(available)],
    ];

    const selector = "probe=" + selectorString(p.name);
    const loadQuery = "series=" + encodeURIComponent("{__name__=~\"node_load(1|5|15)\"," + selector + "}");
    const memoryQuery = "series=" +
      encodeURIComponent("{__name__=~\"node_memory_(MemTotal|MemAvailable)_bytes\"," + selector + "}");
    const fsRows = filesystemRows(figures);
    const netRows = networkRows(figures);

    return el("div", { class: "host", "data-host-probe": p.name },
      el("article", { class: "card " + health.colour },
        el("dl", { class: "facts" }, facts.map(([k, ...v]) => [el("dt", { text: k }), el("dd", {}, v)])),
        busy === null ? el("div", { class: "meta",
          text: "The CPU share needs two runs of the probe, so it appears after its second run." }) : null),
      el("h2", { text: "Filesystems" }),
      fsRows.length ? dataTable("filesystems", ["Mount point", "Device · type", "Size", "Available", "Space left"], fsRows)
        : el("p", { class: "empty", text: "No filesystem figures: the probe keeps none, or its root is not /." }),
      el("h2", { text: "Network (between the probe's last two runs)" }),
      netRows.length ? dataTable("interfaces", ["Interface", "Received", "Sent"], netRows)
        : el("p", { class: "empty",
          text: "No network rates yet: they need two runs of the probe less than " +
            NETWORK_RATE_WINDOW.replace("m", " minutes") + " apart." }),
      el("h2", { text: "Load and memory" }),
      graphImage(loadQuery, "Load averages of probe " + p.name, range),
      graphImage(memoryQuery, "Total and available memory of probe " + p.name, range));
  }

  const host = {
    title: "Host",
    async load() {
      const probes = (await t.api("/probes")) || [];
      const hosts = probes.filter((p) => p.type === "host").sort((a, b) => a.name.localeCompare(b.name));
      return Promise.all(hosts.map(loadHostProbe));
    },
    render(list, params, ctx) {
      const page = el("section", {}, el("h1", { text: "Host" }));
      if (!list || list.length === 0) {
        page.append(el("p", { class: "empty",
          text: "No host probe is configured, so there are no figures of this machine. " +
            "Add a probe with type: host to the config (docs/configuration.md) to see them here." }));
        return page;
      }
      const range = chosenRange(ctx);
      page.append(rangePicker(range, ctx));
      for (const figures of list) {
        if (list.length > 1) page.append(el("h2", { text: "Probe " + figures.probe.name }));
        page.append(hostSection(figures, range));
      }
      return page;
    },
  };

  const AUDIT_PAGE_SIZE = 50;
  const AUDIT_DETAIL_CHARS = 80;

  function auditDetail(detail) {
    const full = typeof detail === "string" ? detail : JSON.stringify(detail);
    if (full === undefined || full.length <= AUDIT_DETAIL_CHARS) return el("code", { text: full || "" });
    // A long detail folds into a <details> element: the summary shows its start, the
    // title attribute and the opened element the whole text.
    return el("details", {},
      el("summary", { title: full }, el("code", { text: full.slice(0, AUDIT_DETAIL_CHARS - 1) + "…" })),
      el("pre", { text: full }));
  }

  function auditRow(r) {
    return el("tr", { "data-audit-id": r.id, "data-action": r.action },
      el("td", { class: "num", text: r.id }),
      el("td", { title: r.time, text: formatTime(r.time) }),
      el("td", { text: r.actor || "–" }),
      el("td", { text: r.remote || "–" }),
      el("td", { class: "nowrap" }, el("code", { text: r.action })),
      el("td", { class: "detail" }, auditDetail(r.detail)));
  }

  async function verifyAudit(state) {
    const result = await t.api("/audit/verify");
    if (result.intact) {
      state.auditVerify = { word: "INTACT", colour: "green", text: "intact: " + result.records + (result.records === 1 ? " record" : " records") };
    } else {
      state.auditVerify = { word: "BROKEN", colour: "red",
        text: "broken: first bad record id " + result.firstBadId + (result.detail ? " (" + result.detail + ")" : "") };
    }
    state.auditVerify.checked = new Date().toLocaleTimeString();
    return "Audit chain " + state.auditVerify.text + ".";
  }

  const audit = {
    title: "Audit trail",
    // One record more than a page is requested, to know whether an older page exists.
    async load(params, state) {
      const offset = Math.max(0, state.auditOffset || 0);
      const records = await t.api("/audit?limit=" + (AUDIT_PAGE_SIZE + 1) + "&offset=" + offset);
      return { offset, records: records.slice(0, AUDIT_PAGE_SIZE), hasOlder: records.length > AUDIT_PAGE_SIZE };
    },
    render(data, params, ctx) {
      const { offset, records, hasOlder } = data;
      const verify = ctx.state.auditVerify;
      const page = (target) => { ctx.state.auditOffset = target; ctx.reload(); };
      const section = el("section", {}, el("h1", { text: "Audit trail" }),
        el("div", { class: "controls" },
          el("button", { type: "button", id: "audit-verify", class: "ghost",
            onclick: (e) => ctx.act(e.target, () => verifyAudit(ctx.state)) }, "Verify chain"),
          el("span", { id: "audit-verify-result", role: "status" },
            verify ? [badge(verify.word, verify.colour), " " + verify.text + " (checked " + verify.checked + ")"]
              : "Not checked yet.")));
      const nav = el("div", { class: "controls", role: "group", "aria-label": "Audit pages" },
        el("button", { type: "button", class: "ghost", id: "audit-newer", disabled: offset === 0,
          onclick: () => page(Math.max(0, offset - AUDIT_PAGE_SIZE)) }, "← Newer"),
        el("span", { text: records.length ? "Records " + (offset + 1) + "–" + (offset + records.length) : "No records" }),
        el("button", { type: "button", class: "ghost", id: "audit-older", disabled: !hasOlder,
          onclick: () => page(offset + AUDIT_PAGE_SIZE) }, "Older →"));
      section.append(nav);
      if (records.length === 0) {
        section.append(el("p", { class: "empty",
          text: offset === 0 ? "The audit trail has no records yet." : "No records this far back." }));
        return section;
      }
      section.append(dataTable("audit", ["ID", "Time", "Actor", "Remote", "Action", "Detail"], records.map(auditRow)));
      return section;
    },
  };

  t.views = { overview, alerts, silences, slos, probe, host, audit };
})(window.tocsin);
