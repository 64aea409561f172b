import Mustache

/// The dashboard's pages (Mustache, HTML-escaped by `{{…}}`; `{{{…}}}` only for HTML these templates rendered),
/// its stylesheet and its one script, compiled into the binary: nothing is fetched from elsewhere, so the
/// dashboard works on an air-gapped controller, and the Content-Security-Policy admits only this origin.
enum DashboardTemplates {
    /// The templates by name, parsed once.
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in sources {
            // The templates are constants of this file; DashboardTests renders every one.
            if let template = try? MustacheTemplate(string: text) { library.register(template, named: name) }
        }
        return library
    }()

    static let sources: [String: String] = [
        "layout": layout, "login": login, "fleet": fleet, "fleetRegion": fleetRegion, "device": device,
        "message": message, "audit": audit, "policies": policies, "policy": policy,
    ]

    static let layout = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · Vigil</title>
        <link rel="stylesheet" href="/ui/static/vigil.css">
        </head>
        <body>
        <a class="skip" href="#main">Skip to content</a>
        <header>
        <span class="brand">Vigil</span>
        {{#signedIn}}
        <nav aria-label="Sections">
        <a href="/ui/">Fleet</a>
        <a href="/ui/policies">Policies</a>
        <a href="/ui/audit">Audit</a>
        </nav>
        <span class="who">{{role}}</span>
        <form method="post" action="/ui/logout" class="inline">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <button type="submit">Sign out</button>
        </form>
        {{/signedIn}}
        </header>
        <main id="main" tabindex="-1">
        {{{content}}}
        </main>
        {{#live}}<script src="/ui/static/live.js"></script>{{/live}}
        </body>
        </html>
        """

    static let login = """
        <h1>Sign in</h1>
        {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
        <form method="post" action="/ui/login">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <label for="token">Admin API token</label>
        <input id="token" name="token" type="password" autocomplete="off" required autofocus>
        <button type="submit">Sign in</button>
        </form>
        <p class="hint">Any token from <code>vigil admin token create</code>; its role decides what you may do here.</p>
        """

    static let fleet = """
        <h1>Fleet</h1>
        <form method="get" action="/ui/" class="filters" role="search">
        <label for="q">Device or group</label>
        <input id="q" name="q" value="{{query}}">
        <label for="state">State</label>
        <select id="state" name="state">
        {{#stateOptions}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/stateOptions}}
        </select>
        <input type="hidden" name="sort" value="{{sort}}">
        <button type="submit">Filter</button>
        </form>
        <div id="fleet" aria-live="polite">{{{region}}}</div>
        <p class="hint" id="live-status">Live updates need JavaScript; without it, reload the page.</p>
        """

    static let fleetRegion = """
        <ul class="counts">
        {{#counts}}<li class="state-{{state}}"><a href="/ui/?state={{state}}"><span class="n" data-state="{{state}}">{{count}}</span> {{label}}</a></li>{{/counts}}
        </ul>
        <table class="devices">
        <caption>{{shown}} of {{total}} devices</caption>
        <thead><tr>
        {{#columns}}<th scope="col"{{#current}} aria-sort="{{direction}}"{{/current}}><a href="{{link}}">{{label}}</a></th>{{/columns}}
        </tr></thead>
        <tbody>
        {{#devices}}
        <tr class="state-{{state}}" data-device="{{id}}">
        <td><a href="/ui/devices/{{id}}">{{id}}</a></td>
        <td>{{group}}</td>
        <td>{{policy}}</td>
        <td><span class="badge state-{{state}}">{{stateLabel}}</span></td>
        <td>{{#when}}<time datetime="{{whenISO}}">{{when}}</time>{{/when}}{{^when}}—{{/when}}</td>
        <td>{{#failedRules}}<code>{{.}}</code> {{/failedRules}}{{refusal}}</td>
        </tr>
        {{/devices}}
        {{^devices}}<tr><td colspan="6">No device matches.</td></tr>{{/devices}}
        </tbody>
        </table>
        """

    static let device = """
        <p><a href="/ui/">← Fleet</a></p>
        <h1>Device <code>{{id}}</code> <span class="badge state-{{state}}">{{stateLabel}}</span></h1>
        <section aria-labelledby="identity">
        <h2 id="identity">Identity</h2>
        <dl>
        <dt>Group</dt><dd>{{group}}</dd>
        <dt>Policy</dt><dd>{{policy}}</dd>
        <dt>Status</dt><dd>{{status}}</dd>
        <dt>Identity proof</dt><dd>{{identityProof}}</dd>
        {{#ekFingerprint}}<dt>EK (SHA-256 of its public key)</dt><dd><code>{{ekFingerprint}}</code></dd>{{/ekFingerprint}}
        {{#akName}}<dt>AK name</dt><dd><code>{{akName}}</code></dd>{{/akName}}
        {{#eve}}
        <dt>EVE UUID</dt><dd><code>{{uuid}}</code></dd>
        <dt>Serial</dt><dd>{{serial}}</dd>
        <dt>Device certificate</dt><dd>{{subject}} (SHA-256 <code>{{sha256}}</code>)</dd>
        {{/eve}}
        <dt>Onboarded</dt><dd><time datetime="{{onboardedISO}}">{{onboarded}}</time></dd>
        {{#node}}<dt>Node</dt><dd>{{node}}</dd>{{/node}}
        </dl>
        </section>
        {{#latestFailure}}
        <section aria-labelledby="why">
        <h2 id="why">Why the last attestation failed</h2>
        <p>At <time datetime="{{atISO}}">{{at}}</time> against policy {{policy}}.</p>
        {{#refusal}}<p class="error">Refused: {{refusal}}</p>{{/refusal}}
        {{#hasRules}}
        <table class="failures">
        <thead><tr><th scope="col">Rule</th><th scope="col">Expected</th><th scope="col">Found</th><th scope="col">PCR</th><th scope="col">Event</th></tr></thead>
        <tbody>
        {{#rules}}<tr><td><code>{{rule}}</code></td><td>{{expected}}</td><td>{{actual}}</td><td>{{pcr}}</td><td>{{event}}{{#decoded}}: {{type}} <span class="decoded">{{text}}</span> <span class="proof proof-{{proof}}">{{proofLabel}}</span>{{/decoded}}</td></tr>{{/rules}}
        </tbody>
        </table>
        {{/hasRules}}
        </section>
        {{/latestFailure}}
        {{#diff}}
        <section aria-labelledby="changed">
        <h2 id="changed">What changed since the last pass</h2>
        <p>Compared with the boot of the last passing attestation, at <time datetime="{{sinceISO}}">{{since}}</time>.</p>
        {{#same}}<p>The quoted PCRs and the event log are the same as then: the policy or its inputs changed, not the boot.</p>{{/same}}
        {{#hasPCRs}}
        <table class="pcr-diff">
        <caption>Quoted PCRs that changed</caption>
        <thead><tr><th scope="col">Bank</th><th scope="col">PCR</th><th scope="col">At the last pass</th><th scope="col">Now</th></tr></thead>
        <tbody>
        {{#pcrs}}<tr><td>{{bank}}</td><td>{{pcr}}</td><td><code>{{before}}</code></td><td><code>{{after}}</code>{{#unlogged}}<br><strong class="error">No logged event changed: something was measured into this PCR that the log does not show.</strong>{{/unlogged}}</td></tr>{{/pcrs}}
        </tbody>
        </table>
        {{/hasPCRs}}
        {{#hasEvents}}
        <table class="event-diff">
        <caption>Event-log entries added, removed or altered</caption>
        <thead><tr><th scope="col">Change</th><th scope="col">At the last pass</th><th scope="col">Now</th></tr></thead>
        <tbody>
        {{#events}}<tr class="change-{{kind}}"><td>{{kind}}</td>
        <td>{{#before}}#{{index}} PCR {{pcr}} {{type}} <span class="decoded">{{text}}</span><br><code>{{digest}}</code>{{/before}}{{^before}}—{{/before}}</td>
        <td>{{#after}}#{{index}} PCR {{pcr}} {{type}} <span class="decoded">{{text}}</span><br><code>{{digest}}</code> <span class="proof proof-{{proof}}">{{proofLabel}}</span>{{/after}}{{^after}}—{{/after}}</td></tr>{{/events}}
        </tbody>
        </table>
        {{#moreEvents}}<p>{{moreEvents}} more changes not listed.</p>{{/moreEvents}}
        {{/hasEvents}}
        </section>
        {{/diff}}
        {{#noDiff}}<section aria-labelledby="changed"><h2 id="changed">What changed since the last pass</h2><p>{{noDiff}}</p></section>{{/noDiff}}
        {{#boot}}
        <section aria-labelledby="boot">
        <h2 id="boot">The latest boot</h2>
        <p>As the attestation at <time datetime="{{atISO}}">{{at}}</time> showed it (digests in {{bank}}).</p>
        <dl>
        <dt>Secure Boot</dt><dd>{{secureBoot}}</dd>
        <dt>Boot applications</dt><dd>{{#bootApplications}}<div><span class="decoded">{{path}}</span> <code>{{digest}}</code></div>{{/bootApplications}}{{^bootApplications}}none in the log{{/bootApplications}}</dd>
        <dt>Kernel command line</dt><dd>{{#kernelCommandLines}}<div><code class="cmdline">{{.}}</code></div>{{/kernelCommandLines}}{{^kernelCommandLines}}none in the log{{/kernelCommandLines}}</dd>
        </dl>
        <details>
        <summary>All {{eventCount}} events, decoded</summary>
        <table class="events">
        <thead><tr><th scope="col">#</th><th scope="col">PCR</th><th scope="col">Type</th><th scope="col">Data</th><th scope="col">Digest</th><th scope="col">Attested</th></tr></thead>
        <tbody>
        {{#events}}<tr class="proof-{{proof}}"><td>{{index}}</td><td>{{pcr}}</td><td>{{type}}</td><td class="decoded">{{text}}</td><td><code>{{digest}}</code></td><td>{{proofLabel}}</td></tr>{{/events}}
        </tbody>
        </table>
        {{#truncated}}<p>{{truncated}} more events were not kept.</p>{{/truncated}}
        </details>
        </section>
        {{/boot}}
        {{#noBoot}}<section aria-labelledby="boot"><h2 id="boot">The latest boot</h2><p>{{noBoot}}</p></section>{{/noBoot}}
        <section aria-labelledby="history">
        <h2 id="history">Verdict history</h2>
        <ol class="timeline">
        {{#history}}
        <li class="{{#pass}}pass{{/pass}}{{^pass}}fail{{/pass}}">
        <time datetime="{{atISO}}">{{at}}</time>
        <span class="badge {{#pass}}state-trusted{{/pass}}{{^pass}}state-failed{{/pass}}">{{#pass}}pass{{/pass}}{{^pass}}fail{{/pass}}</span>
        {{policy}}
        {{#failedRules}}<code>{{.}}</code> {{/failedRules}}
        {{#refusal}}<span class="refusal">{{refusal}}</span>{{/refusal}}
        </li>
        {{/history}}
        {{^history}}<li>No attestation yet.</li>{{/history}}
        </ol>
        </section>
        """

    static let audit = """
        <h1>Audit log</h1>
        <section aria-labelledby="chain">
        <h2 id="chain">Chain</h2>
        {{#report}}
        <p class="{{#intact}}ok{{/intact}}{{^intact}}error{{/intact}}" role="status">Verified just now:
        {{#intact}}intact, {{entries}} entries.{{/intact}}{{^intact}}<strong>broken at entry {{firstBroken}}</strong>: {{reason}}.{{/intact}}</p>
        {{/report}}
        {{^report}}
        {{#last}}<p>Last verified at <time datetime="{{atISO}}">{{at}}</time> by {{actor}}: {{detail}}.</p>{{/last}}
        {{^last}}<p>The chain has not been verified yet.</p>{{/last}}
        {{/report}}
        <form method="post" action="/ui/audit/verify">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <button type="submit">Verify the chain now</button>
        </form>
        <p class="hint">Verification recomputes every entry's digest and link, and is itself recorded.</p>
        </section>
        <section aria-labelledby="entries">
        <h2 id="entries">Entries</h2>
        <form method="get" action="/ui/audit" class="filters" role="search">
        <label for="q">Actor, action, subject or outcome</label>
        <input id="q" name="q" value="{{query}}">
        <button type="submit">Filter</button>
        </form>
        <table class="audit">
        <thead><tr><th scope="col">#</th><th scope="col">When</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Subject</th><th scope="col">Outcome</th><th scope="col">Detail</th></tr></thead>
        <tbody>
        {{#entries}}<tr><td>{{seq}}</td><td><time datetime="{{atISO}}">{{at}}</time></td><td><code>{{actor}}</code></td><td>{{action}}</td><td>{{subject}}</td><td>{{outcome}}</td><td>{{detail}}</td></tr>{{/entries}}
        {{^entries}}<tr><td colspan="7">No entry matches.</td></tr>{{/entries}}
        </tbody>
        </table>
        {{#olderLink}}<p><a href="{{olderLink}}">Older entries</a></p>{{/olderLink}}
        </section>
        """

    static let policies = """
        <h1>Policies</h1>
        <table class="policies">
        <thead><tr><th scope="col">Policy</th><th scope="col">Latest</th><th scope="col">Versions</th><th scope="col">Assigned to</th><th scope="col">Lint (latest)</th></tr></thead>
        <tbody>
        {{#rows}}<tr><td><a href="{{link}}">{{name}}</a></td><td>{{latest}}</td><td>{{count}}</td><td>{{#usedBy}}<div>{{.}}</div>{{/usedBy}}{{^usedBy}}—{{/usedBy}}</td><td>{{#lint}}<span class="lint-{{level}}">{{level}}</span>: {{message}}{{/lint}}</td></tr>{{/rows}}
        {{^hasRows}}<tr><td colspan="5">No policy yet.</td></tr>{{/hasRows}}
        </tbody>
        </table>
        <section aria-labelledby="upload">
        <h2 id="upload">Upload a version</h2>
        {{#canUpload}}
        {{#upload}}
        {{#hasErrors}}
        <div class="error" role="alert" id="lint-errors">
        <p>The policy does not lint; nothing was stored.</p>
        <ul>
        {{#errors}}<li><code class="location">{{location}}</code>: {{message}}{{#source}}<pre class="source">{{source}}
        {{caret}}</pre>{{/source}}</li>{{/errors}}
        </ul>
        </div>
        {{/hasErrors}}
        <form method="post" action="/ui/policies" class="upload">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <label for="policy-name">Name</label>
        <input id="policy-name" name="name" value="{{name}}" required pattern="[A-Za-z0-9][A-Za-z0-9._-]{0,63}">
        <label for="policy-parent">Extends (a stored version, with what it extends)</label>
        <select id="policy-parent" name="parent">
        {{#parents}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/parents}}
        </select>
        <label for="policy-yaml">Policy (YAML)</label>
        <textarea id="policy-yaml" name="yaml" rows="18" cols="90" required spellcheck="false">{{yaml}}</textarea>
        <button type="submit">Lint and store as a new version</button>
        </form>
        <p class="hint">The linter runs first; a version is never overwritten. Assigning it to a group is a separate step (<code>vigil admin policy assign</code>).</p>
        {{/upload}}
        {{/canUpload}}
        {{^canUpload}}<p>Uploading needs the policy-admin role; you signed in as {{role}}.</p>{{/canUpload}}
        </section>
        """

    static let policy = """
        <p><a href="/ui/policies">← Policies</a></p>
        <h1>Policy <code>{{name}}</code>, version {{shown}}</h1>
        <section aria-labelledby="versions">
        <h2 id="versions">Versions</h2>
        <table class="versions">
        <thead><tr><th scope="col">Version</th><th scope="col">SHA-256</th><th scope="col">Stored</th><th scope="col">Assigned to</th><th scope="col">Lint</th></tr></thead>
        <tbody>
        {{#versions}}<tr{{#selected}} aria-current="true" class="selected"{{/selected}}><td><a href="{{link}}">{{version}}</a></td><td><code>{{sha256}}</code></td><td><time datetime="{{createdISO}}">{{created}}</time></td><td>{{#usedBy}}<div>{{.}}</div>{{/usedBy}}{{^usedBy}}—{{/usedBy}}</td><td>{{#lint}}<span class="lint-{{level}}">{{level}}</span>: {{message}}{{/lint}}</td></tr>{{/versions}}
        </tbody>
        </table>
        </section>
        <section aria-labelledby="compare">
        <h2 id="compare">Compare two versions</h2>
        <form method="get" action="/ui/policies/{{name}}" class="filters">
        <input type="hidden" name="version" value="{{shown}}">
        <label for="from">From</label>
        <select id="from" name="from">{{#fromOptions}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/fromOptions}}</select>
        <label for="to">To</label>
        <select id="to" name="to">{{#toOptions}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/toOptions}}</select>
        <button type="submit">Compare</button>
        </form>
        {{#diff}}
        <h3>Version {{from}} → version {{to}}</h3>
        {{#hasSemantic}}
        <p>What version {{to}} accepts or refuses that version {{from}} did not:</p>
        <ul class="semantic-diff">{{#semantic}}<li><code>{{.}}</code></li>{{/semantic}}</ul>
        {{/hasSemantic}}
        {{^hasSemantic}}<p>No difference in what the two versions accept.</p>{{/hasSemantic}}
        {{#same}}<p>The two sources are the same.</p>{{/same}}
        <table class="diff">
        <caption>Source, line by line</caption>
        <thead><tr><th scope="col">Old</th><th scope="col">New</th><th scope="col"><span class="visually-hidden">Change</span></th><th scope="col">Line</th></tr></thead>
        <tbody>
        {{#lines}}<tr class="diff-{{kind}}"><td>{{old}}</td><td>{{new}}</td><td>{{sign}}</td><td><code>{{text}}</code></td></tr>{{/lines}}
        </tbody>
        </table>
        {{/diff}}
        </section>
        <section aria-labelledby="explained">
        <h2 id="explained">Version {{shown}} in plain words</h2>
        {{#lint}}<p>Lint: <span class="lint-{{level}}">{{level}}</span>: {{message}}</p>{{/lint}}
        <ul>{{#explanation}}<li>{{.}}</li>{{/explanation}}</ul>
        <h3>Source</h3>
        <p class="hint">Stored with the {{parents}} document(s) it extends.</p>
        <pre class="source">{{yaml}}</pre>
        </section>
        """

    static let message = """
        <h1>{{heading}}</h1>
        <p>{{text}}</p>
        <p><a href="/ui/">Fleet</a></p>
        """

    /// The stylesheet: plain, readable on a laptop, visible focus for keyboard users, no web fonts.
    static let stylesheet = """
        :root { color-scheme: light; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --ok: #1a7f37; --bad: #cf222e;
          --warn: #9a6700; --off: #6e7781; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); }
        header { display: flex; gap: 1.2rem; align-items: center; padding: .6rem 1.2rem; border-bottom: 1px solid var(--line); }
        header .brand { font-weight: 700; }
        header nav a { margin-right: .8rem; }
        header .who { margin-left: auto; color: var(--muted); }
        main { padding: 1rem 1.2rem; max-width: 80rem; }
        a { color: #0969da; }
        :focus-visible { outline: 3px solid #0969da; outline-offset: 2px; }
        .skip { position: absolute; left: -10rem; }
        .skip:focus { left: .5rem; top: .5rem; background: #fff; padding: .3rem; }
        table { border-collapse: collapse; width: 100%; margin: .6rem 0; }
        th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top;
          overflow-wrap: anywhere; }
        table.failures td:first-child { min-width: 12rem; overflow-wrap: normal; }
        table.failures td:nth-child(2), table.failures td:nth-child(3) { min-width: 10rem; }
        table.failures td:nth-child(4) { white-space: nowrap; }
        table.failures td:nth-child(5) { min-width: 18rem; }
        caption { text-align: left; color: var(--muted); padding: .3rem 0; }
        code { font: 13px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; overflow-wrap: anywhere; }
        .badge { display: inline-block; padding: 0 .45rem; border-radius: 1rem; font-size: 13px; border: 1px solid; }
        .state-trusted.badge { color: var(--ok); } .state-failed.badge { color: var(--bad); }
        .state-stale.badge { color: var(--warn); } .state-revoked.badge, .state-never.badge { color: var(--off); }
        .counts { display: flex; flex-wrap: wrap; gap: .8rem; list-style: none; padding: 0; }
        .counts li a { display: block; padding: .5rem .8rem; border: 1px solid var(--line); border-radius: .4rem;
          text-decoration: none; color: var(--fg); }
        .counts .n { font-size: 1.4rem; font-weight: 700; display: block; }
        .filters { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; }
        .error { color: var(--bad); } .ok { color: var(--ok); }
        .hint { color: var(--muted); font-size: 13px; }
        form.inline { display: inline; }
        dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
        dt { color: var(--muted); } dd { margin: 0; overflow-wrap: anywhere; }
        .timeline li { margin: .3rem 0; }
        .proof { font-size: 13px; color: var(--muted); }
        .proof-unbound, .proof-unproven { color: var(--bad); }
        tr.proof-unbound td, tr.proof-unproven td { color: var(--bad); }
        .change-added td:first-child { color: var(--ok); } .change-removed td:first-child, .change-altered td:first-child { color: var(--bad); }
        details summary { cursor: pointer; margin: .4rem 0; }
        .decoded, code.cmdline { overflow-wrap: anywhere; unicode-bidi: isolate; }
        pre.source { background: #f6f8fa; padding: .6rem; overflow-x: auto; font: 13px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; }
        .lint-error { color: var(--bad); font-weight: 600; } .lint-warning { color: var(--warn); font-weight: 600; }
        .lint-ok { color: var(--ok); }
        table.diff td { padding: 0 .4rem; border: 0; white-space: pre-wrap; }
        table.diff td:nth-child(-n+3) { color: var(--muted); width: 3rem; white-space: nowrap; }
        tr.diff-add { background: #dafbe1; } tr.diff-del { background: #ffebe9; } tr.diff-skip td { color: var(--muted); }
        tr.selected td { background: #f6f8fa; }
        form.upload { display: grid; gap: .3rem; max-width: 60rem; }
        textarea { font: 13px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; width: 100%; }
        .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
        label { font-weight: 600; }
        input, select, button { font: inherit; padding: .25rem .4rem; }
        """

    /// Live updates on the fleet page: on each verdict event (server-sent), the fleet region is fetched again as
    /// server-rendered, escaped HTML. Without JavaScript the page works, without live updates.
    static let liveScript = """
        (function () {
          "use strict";
          var region = document.getElementById("fleet");
          var status = document.getElementById("live-status");
          if (!region || !window.EventSource || !window.fetch) { return; }
          var source = new EventSource("/ui/events");
          var busy = false, again = false, last = 0;
          // At most one refresh every two seconds however many verdicts arrive: the table is one query.
          function refresh() {
            if (busy) { again = true; return; }
            var wait = last + 2000 - Date.now();
            if (wait > 0) { busy = true; setTimeout(function () { busy = false; refresh(); }, wait); return; }
            busy = true;
            last = Date.now();
            var query = window.location.search ? window.location.search + "&" : "?";
            fetch("/ui/" + query + "fragment=1", { credentials: "same-origin", redirect: "error" })
              .then(function (r) {
                // The session ended: the page itself goes to sign-in.
                if (r.status === 401) { window.location.reload(); return null; }
                return r.ok ? r.text() : null;
              })
              .then(function (html) {
                if (html !== null) { region.innerHTML = html; }
                busy = false;
                if (again) { again = false; refresh(); }
              })
              .catch(function () { busy = false; });
          }
          source.addEventListener("open", function () {
            if (status) { status.textContent = "Live: the table updates when a verdict arrives."; }
          });
          source.addEventListener("verdict", refresh);
          source.addEventListener("error", function () {
            if (status) { status.textContent = "Live updates interrupted; retrying."; }
          });
        })();
        """
}
