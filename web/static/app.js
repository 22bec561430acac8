// The dashboard's shell: hash routes, the refresh loop (every 10 s, paused while the tab
// is hidden), the API-unreachable banner, the token field and the theme toggle.
"use strict";

(function (t) {
  const REFRESH_MS = 10000;
  const THEME_KEY = "tocsin.theme";
  const THEMES = ["auto", "dark", "light"];

  const main = document.getElementById("main");
  const banner = document.getElementById("banner");
  const notice = document.getElementById("notice");
  const updated = document.getElementById("updated");

  // Page state that survives refreshes and route changes (group-by choice, graph range,
  // audit page offset, last chain check). Views read it in load() as well as in render().
  const state = {};
  let timer = null;
  let generation = 0;
  let lastData = null;
  let lastUpdate = null;

  function parseRoute() {
    const hash = decodeURIComponent(location.hash.replace(/^#\/?/, ""));
    if (hash.startsWith("probe/")) return { view: "probe", page: "overview", params: { name: hash.slice(6) } };
    if (["alerts", "silences", "slos", "host", "audit"].includes(hash)) return { view: hash, page: hash, params: {} };
    return { view: "overview", page: "overview", params: {} };
  }

  function highlightNav(page) {
    for (const link of document.querySelectorAll(".nav a")) {
      const current = link.dataset.page === page;
      link.classList.toggle("current", current);
      if (current) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  function showBanner(text) {
    banner.textContent = text;
    banner.hidden = !text;
  }

  function showNotice(text, isError) {
    notice.textContent = text;
    notice.classList.toggle("error", !!isError);
    notice.hidden = !text;
  }

  const ctx = {
    state,
    rerender() {
      if (lastData !== null) render(lastData);
    },
    // Loads the page again now, for a state change that needs other data (an audit page).
    reload() {
      refresh();
    },
    // Runs a write triggered by `button`, reports its result, and refreshes soon after,
    // because the alerter applies a silence or an acknowledgement on its next pass.
    async act(button, action) {
      button.disabled = true;
      try {
        showNotice(await action(), false);
        refresh();
        setTimeout(refresh, 1500);
      } catch (e) {
        showNotice(e.message, true);
        button.disabled = false;
      }
    },
  };

  function render(data) {
    const route = parseRoute();
    const view = t.views[route.view];
    main.replaceChildren(view.render(data, route.params, ctx));
    document.title = (route.view === "probe" ? "Probe " + route.params.name : view.title) + " · tocsin";
  }

  function scheduleNext() {
    clearTimeout(timer);
    timer = document.hidden ? null : setTimeout(refresh, REFRESH_MS);
  }

  function describeUpdate() {
    if (document.hidden) return "Paused while this tab is hidden";
    return lastUpdate ? "Updated " + lastUpdate.toLocaleTimeString() + ", every 10 s" : "Loading…";
  }

  async function refresh() {
    const route = parseRoute();
    const mine = ++generation;
    highlightNav(route.page);
    scheduleNext();
    try {
      const data = await t.views[route.view].load(route.params, state);
      if (mine !== generation) return;
      lastData = data;
      lastUpdate = new Date();
      showBanner("");
      render(data);
    } catch (e) {
      if (mine !== generation) return;
      if (e.unreachable) {
        showBanner("Cannot reach the tocsin API: " + e.message.replace(/^Cannot reach the tocsin API: /, "") +
          ". Showing the last data; retrying every 10 s.");
      } else {
        showBanner("Loading failed: " + e.message);
      }
      if (lastData === null) {
        main.replaceChildren(t.el("p", { class: "error-text", text: "Could not load this page. " + e.message }));
      }
    }
    updated.textContent = describeUpdate();
  }

  function applyTheme(theme) {
    if (theme === "auto") document.documentElement.removeAttribute("data-theme");
    else document.documentElement.setAttribute("data-theme", theme);
    document.getElementById("theme-toggle").textContent = "Theme: " + theme;
  }

  function currentTheme() {
    try {
      const saved = localStorage.getItem(THEME_KEY);
      return THEMES.includes(saved) ? saved : "auto";
    } catch (e) {
      return "auto";
    }
  }

  function setupTheme() {
    const toggle = document.getElementById("theme-toggle");
    applyTheme(currentTheme());
    toggle.addEventListener("click", () => {
      const next = THEMES[(THEMES.indexOf(currentTheme()) + 1) % THEMES.length];
      try {
        localStorage.setItem(THEME_KEY, next);
      } catch (e) {
        // Storage disabled: the choice then lasts until the page is reloaded.
      }
      applyTheme(next);
    });
  }

  function setupToken() {
    const form = document.getElementById("token-form");
    const input = document.getElementById("token");
    input.value = t.getToken();
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      t.setToken(input.value.trim());
      showNotice(input.value.trim() ? "Token saved for this tab." : "Token cleared.", false);
    });
  }

  setupTheme();
  setupToken();
  window.addEventListener("hashchange", () => {
    lastData = null;
    showNotice("", false);
    main.replaceChildren(t.el("p", { class: "loading", text: "Loading…" }));
    refresh();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) {
      clearTimeout(timer);
      timer = null;
      updated.textContent = describeUpdate();
    } else {
      refresh();
    }
  });
  refresh();
})(window.tocsin);
