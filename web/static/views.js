// The dashboard's pages. Each view has load(params), which calls the API and returns the
// data, and render(data, params, ctx), which returns the page's DOM from that data. ctx
// carries the page state that outlives a refresh and the actions that change state.
"use strict";

(function (t) {
  const { el, badge, labelChips, formatDuration, formatRelative, formatTime, formatPercent } = t;

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
  function graphImage(name, range) {
    const main = document.getElementById("main");
    const width = Math.max(300, Math.min(1200, Math.round(((main && main.clientWidth) || 800) / 50) * 50 - 40));
    const height = width < 500 ? 220 : 300;
    const src = "/graph?probe=" + encodeURIComponent(name) + "&start=-" + range +
      "&width=" + width + "&height=" + height;
    const failed = el("p", { class: "empty", hidden: true,
      text: "The graph could not be drawn: the probe may have no archived data yet." });
    const img = el("img", {
      src, width, height, alt: "Run duration and failures of probe " + name + " over the last " + range,
      onerror: () => { img.hidden = true; failed.hidden = false; },
    });
    return el("div", { class: "graph" }, img, failed);
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
      const range = GRAPH_RANGES.includes(ctx.state.range) ? ctx.state.range : "1h";
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
      const picker = el("div", { class: "controls", role: "group", "aria-label": "Time range" },
        el("span", { text: "Range" }),
        GRAPH_RANGES.map((r) => el("button", {
          type: "button", class: r === range ? "chosen range" : "ghost range", "aria-pressed": r === range ? "true" : "false",
          "data-range": r, onclick: () => { ctx.state.range = r; ctx.rerender(); },
        }, r)));
      const active = (data.alerts || []).filter((a) => a.state !== "resolved");
      return el("section", {},
        el("p", {}, el("a", { href: "#/", text: "← Overview" })),
        el("h1", {}, "Probe " + p.name + " ", badge(health.word, health.colour)),
        el("article", { class: "card " + health.colour },
          el("dl", { class: "facts" }, facts.map(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)])),
          labelChips(p.labels)),
        picker,
        graphImage(p.name, range),
        el("h2", { text: "Alerts of this probe" }),
        active.length ? el("div", { class: "cards" }, active.map((a) => alertCard(a, ctx)))
          : el("p", { class: "empty", text: "None." }));
    },
  };

  t.views = { overview, alerts, silences, slos, probe };
})(window.tocsin);
