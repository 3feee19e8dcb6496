// smoke-test: a bluegreen health-check plugin in JavaScript. It fetches each
// path in the `paths` setting on the candidate's own URL (through wasi:http,
// so the deploy file must grant `allow_http: [candidate]`) and checks the
// status (`status`, default 200) and that the body contains `body-contains`.
// All good: proceed. Anything off: retry-after, so the host polls again
// within the deploy's health timeout; the findings say what was off.

function setting(deploy, key, fallback) {
  const found = deploy.settings.find(([k]) => k === key);
  return found ? found[1] : fallback;
}

function finding(severity, rule, message) {
  return { severity, rule, message, file: undefined, line: undefined, fix: undefined };
}

export const healthCheck = {
  async handle(deploy, target, attempt) {
    const paths = setting(deploy, "paths", "/").split(",").map((p) => p.trim()).filter(Boolean);
    const status = Number(setting(deploy, "status", "200"));
    const text = setting(deploy, "body-contains", "");
    if (!Number.isInteger(status)) {
      throw `setting \`status\`: expected an HTTP status code`;
    }
    const base = target.candidateUrl.replace(/\/$/, "");
    const findings = [];
    let ok = true;
    for (const path of paths) {
      const url = base + (path.startsWith("/") ? path : "/" + path);
      try {
        const resp = await fetch(url);
        const body = await resp.text();
        if (resp.status !== status) {
          ok = false;
          findings.push(finding("warning", "smoke-status", `${url}: HTTP ${resp.status}, expected ${status}`));
        } else if (text && !body.includes(text)) {
          ok = false;
          findings.push(finding("warning", "smoke-body", `${url}: the body does not contain \`${text}\``));
        } else {
          findings.push(finding("info", "smoke-ok", `${url}: HTTP ${resp.status}`));
        }
      } catch (e) {
        ok = false;
        findings.push(finding("warning", "smoke-unreachable", `${url}: ${e}`));
      }
    }
    const verdict = ok ? { tag: "proceed" } : { tag: "retry-after-ms", val: 500 };
    return { verdict, findings };
  },
};
