// The console's shell: sign-in, the navigation, and the view named by the URL's fragment
// (#/overview, #/live, …). A view is a module under views/ exporting
// `{id, title, render(root) -> cleanup}` (docs/console.md, "Adding a view").

import { ApiError, clearSession, get, saveSession, session } from "./api.js";
import { h, replace } from "./dom.js";
import { view as issues } from "./views/issues.js";
import { view as live } from "./views/live.js";
import { view as overview } from "./views/overview.js";
import { view as requests } from "./views/requests.js";
import { view as schema } from "./views/schema.js";
import { view as users } from "./views/users.js";

const VIEWS = [overview, live, requests, issues, schema, users];
const app = document.getElementById("app");
let cleanup = null;

function stop() {
  if (cleanup) cleanup();
  cleanup = null;
}

function signIn(message) {
  stop();
  const workspace = h("input", { id: "workspace", name: "workspace", required: true, autocomplete: "username", spellcheck: "false" });
  const secret = h("input", { id: "secret", name: "secret", type: "password", required: true, autocomplete: "current-password" });
  const kindKey = h("input", { type: "radio", name: "kind", value: "key", id: "kind-key", checked: true });
  const kindAdmin = h("input", { type: "radio", name: "kind", value: "admin", id: "kind-admin" });
  const error = h("p", { class: "error", role: "alert", id: "signin-error" }, message || "");
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    {
      class: "signin",
      on: {
        submit: async (event) => {
          event.preventDefault();
          const candidate = {
            workspace: workspace.value.trim(),
            kind: kindAdmin.checked ? "admin" : "key",
            secret: secret.value,
          };
          button.disabled = true;
          error.textContent = "";
          try {
            await get("stats", {}, candidate);
            saveSession(candidate);
            if (!location.hash || location.hash === "#/") location.hash = "#/overview";
            route();
          } catch (failure) {
            error.textContent =
              failure instanceof ApiError ? `Sign-in failed: ${failure.message}` : `Sign-in failed: ${failure}`;
          } finally {
            button.disabled = false;
          }
        },
      },
    },
    h("h1", {}, "trackd console"),
    h("p", { class: "muted" }, "Watch and debug a workspace's integration: live events, rejected requests, schema and users."),
    h("label", { for: "workspace" }, "Workspace id"),
    workspace,
    h(
      "fieldset",
      { class: "kinds" },
      h("legend", {}, "Sign in with"),
      h("label", { for: "kind-key" }, kindKey, " the workspace's Data API key"),
      h("label", { for: "kind-admin" }, kindAdmin, " the admin token"),
    ),
    h("label", { for: "secret" }, "Key or token"),
    secret,
    button,
    error,
    h("p", { class: "fine" }, "Kept for this tab only (sessionStorage), sent as an Authorization header. No cookies."),
  );
  replace(app, h("main", { class: "signin-page" }, form));
  workspace.focus();
}

function route() {
  const current = session();
  if (!current) {
    signIn();
    return;
  }
  stop();
  const id = (location.hash.match(/^#\/([a-z]+)/) || [])[1];
  const view = VIEWS.find((one) => one.id === id) || VIEWS[0];
  const content = h("section", { class: "view", id: `view-${view.id}` });
  const nav = h(
    "nav",
    { class: "tabs", "aria-label": "Views" },
    VIEWS.map((one) =>
      h("a", { href: `#/${one.id}`, class: one === view ? "tab active" : "tab", "aria-current": one === view ? "page" : false }, one.title),
    ),
  );
  const header = h(
    "header",
    { class: "top" },
    h("div", { class: "brand" }, h("span", { class: "logo" }, "trackd"), h("span", { class: "product" }, "console")),
    nav,
    h(
      "div",
      { class: "who" },
      h("span", { class: "workspace", title: current.kind === "admin" ? "signed in with the admin token" : "signed in with the workspace's key" }, current.workspace),
      current.kind === "admin" ? h("span", { class: "badge" }, "admin") : null,
      h("button", { type: "button", class: "link", id: "signout", on: { click: () => { clearSession(); location.hash = ""; signIn(); } } }, "Sign out"),
    ),
  );
  replace(app, header, h("main", {}, h("h2", { class: "view-title" }, view.title), content));
  document.title = `${view.title} · ${current.workspace} · trackd console`;
  cleanup = view.render(content, {
    onUnauthorised: (message) => {
      clearSession();
      signIn(message);
    },
  });
}

window.addEventListener("hashchange", route);
route();
