// Shared helpers of the dashboard: element building (text only, never HTML strings, so
// that label values cannot inject markup), formatting, the API token and API calls.
"use strict";

window.tocsin = window.tocsin || {};

(function (t) {
  const TOKEN_KEY = "tocsin.token";

  // Builds an element. attrs: class, text, href, title, type, hidden, data-*, on* handlers.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // A state badge: the colour class and the word, so that state never depends on colour.
  function badge(word, colour) {
    return el("span", { class: "badge " + colour, text: word });
  }

  function labelChips(labels, skip) {
    const names = Object.keys(labels || {}).filter((n) => !(skip || []).includes(n)).sort();
    if (names.length === 0) return null;
    return el("div", { class: "labels" },
      names.map((n) => el("span", { class: "label", text: n + "=" + labels[n] })));
  }

  function formatDuration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
    if (seconds < 0.001) return (seconds * 1e6).toFixed(0) + " µs";
    if (seconds < 1) return (seconds * 1000).toFixed(1) + " ms";
    if (seconds < 120) return seconds.toFixed(2) + " s";
    if (seconds < 7200) return (seconds / 60).toFixed(0) + " min";
    if (seconds < 172800) return (seconds / 3600).toFixed(1) + " h";
    return (seconds / 86400).toFixed(1) + " d";
  }

  // "5 min ago" or "in 2 h" for an RFC 3339 time; "–" for null.
  function formatRelative(iso) {
    if (!iso) return "–";
    const ms = Date.parse(iso);
    if (isNaN(ms)) return iso;
    const seconds = (ms - Date.now()) / 1000;
    const text = formatDuration(Math.abs(seconds));
    return seconds >= 0 ? "in " + text : text + " ago";
  }

  function formatTime(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    return isNaN(d.getTime()) ? iso : d.toLocaleString();
  }

  function formatPercent(ratio) {
    if (ratio === null || ratio === undefined || !isFinite(ratio)) return "no data";
    return (ratio * 100).toFixed(ratio >= 0.9995 || ratio <= -0.9995 ? 1 : 3) + " %";
  }

  // Formats a byte count in binary units (KiB, MiB, ...), as df -h and free -h print them.
  function formatBytes(bytes) {
    if (bytes === null || bytes === undefined || !isFinite(bytes)) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let value = bytes;
    let unit = 0;
    while (Math.abs(value) >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit++;
    }
    return (unit === 0 ? value.toFixed(0) : value.toFixed(value < 10 ? 2 : 1)) + " " + units[unit];
  }

  function getToken() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || "";
    } catch (e) {
      return "";
    }
  }

  function setToken(token) {
    try {
      if (token) sessionStorage.setItem(TOKEN_KEY, token);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) {
      // Storage disabled: the token then lasts until the page is reloaded.
    }
    t.tokenInMemory = token;
  }

  // An error whose message is fit to show: the API's own detail when it sent one.
  class ApiError extends Error {
    constructor(message, status, unreachable) {
      super(message);
      this.status = status;
      this.unreachable = unreachable;
    }
  }

  // Calls /api/v1 PATH and returns its "data". Rejects with ApiError: unreachable is set
  // when no HTTP reply came back (daemon down, network error).
  async function api(path, options) {
    const opts = Object.assign({ method: "GET", headers: {} }, options || {});
    const init = { method: opts.method, headers: Object.assign({}, opts.headers), cache: "no-store" };
    if (opts.body !== undefined) {
      init.body = JSON.stringify(opts.body);
      init.headers["Content-Type"] = "application/json";
    }
    if (opts.auth) {
      // A token typed into the field but not saved yet is used, and saved, as well.
      const field = document.getElementById("token");
      const typed = field ? field.value.trim() : "";
      if (typed && typed !== getToken()) setToken(typed);
      const token = typed || getToken() || t.tokenInMemory || "";
      if (!token) throw new ApiError("Enter an API token (top right) to make changes.", 0, false);
      init.headers.Authorization = "Bearer " + token;
    }
    let response;
    try {
      response = await fetch("/api/v1" + path, init);
    } catch (e) {
      throw new ApiError("Cannot reach the tocsin API: " + e.message, 0, true);
    }
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      throw new ApiError("The API sent a reply that is not JSON (HTTP " + response.status + ") for " + path,
        response.status, false);
    }
    if (!response.ok || body.status !== "success") {
      const detail = body && (body.detail || body.error);
      throw new ApiError("HTTP " + response.status + " for " + path + ": " + (detail || "request failed"),
        response.status, false);
    }
    return body.data;
  }

  Object.assign(t, {
    el, badge, labelChips, formatDuration, formatRelative, formatTime, formatPercent, formatBytes,
    getToken, setToken, api, ApiError,
  });
})(window.tocsin);
