import ControllerProtocol
import Foundation
import Mustache

/// What the dashboard's pages show, computed from the admin API's answers and rendered by ``DashboardTemplates``.
/// Everything a device sent (ids, groups, rule findings, certificate subjects, refusals) reaches the page only
/// through `{{…}}`, which escapes it.
enum DashboardPages {
    /// A device's trust at a glance.
    enum FleetState: String, CaseIterable, Sendable {
        case failed, stale, trusted, revoked, never

        var label: String {
            switch self {
            case .trusted: "trusted"
            case .failed: "failed"
            case .stale: "stale (no fresh verdict)"
            case .revoked: "revoked"
            case .never: "never attested"
            }
        }

        /// Revoked first (it overrides everything), then no verdict, a failed one, an old one.
        static func of(_ summary: Admin.DeviceSummary, now: Date, freshFor: TimeInterval) -> FleetState {
            if summary.status == "revoked" { return .revoked }
            guard let last = summary.last else { return .never }
            if !last.pass { return .failed }
            return now.timeIntervalSince(last.at) > freshFor ? .stale : .trusted
        }
    }

    /// The fleet table's query: filter by text and state, sort by a column.
    struct FleetQuery: Sendable {
        var text = ""
        var state: FleetState?
        var sort = "state"
        var descending = false

        static let columns: [(key: String, label: String)] = [
            ("id", "Device"), ("group", "Group"), ("policy", "Policy"), ("state", "State"), ("last", "Last verdict"),
            ("rules", "Failed rules"),
        ]

        init() {}

        /// From the page's query string; unknown values fall back to the defaults (and are never echoed raw).
        init(_ parameters: [String: String]) {
            text = String((parameters["q"] ?? "").prefix(200))
            state = parameters["state"].flatMap(FleetState.init(rawValue:))
            if let sort = parameters["sort"], Self.columns.contains(where: { $0.key == sort }) { self.sort = sort }
            descending = parameters["order"] == "desc"
        }

        /// The query string for this query with another sort.
        func link(sortingBy key: String) -> String {
            var items = [URLQueryItem(name: "sort", value: key)]
            if key == sort, !descending { items.append(URLQueryItem(name: "order", value: "desc")) }
            if !text.isEmpty { items.append(URLQueryItem(name: "q", value: text)) }
            if let state { items.append(URLQueryItem(name: "state", value: state.rawValue)) }
            var components = URLComponents()
            components.path = "/ui/"
            components.queryItems = items
            return components.string ?? "/ui/"
        }
    }

    struct Count { let state: String, label: String, count: Int }
    struct Column { let label: String, link: String, current: Bool, direction: String }
    struct Row {
        let id: String, group: String, policy: String, state: String, stateLabel: String
        let when: String?, whenISO: String?, failedRules: [String], refusal: String
    }
    struct FleetRegion {
        let counts: [Count], columns: [Column], devices: [Row], shown: Int, total: Int
    }
    struct Option { let value: String, label: String, selected: Bool }
    struct FleetPage {
        let query: String, sort: String, stateOptions: [Option], region: String
    }

    /// The fleet table and its counts.
    static func fleetRegion(_ devices: [Admin.DeviceSummary], _ query: FleetQuery, now: Date, freshFor: TimeInterval)
        -> String
    {
        let judged = devices.map { ($0, FleetState.of($0, now: now, freshFor: freshFor)) }
        let counts = FleetState.allCases.map { state in
            Count(state: state.rawValue, label: state.label, count: judged.filter { $0.1 == state }.count)
        }
        let needle = query.text.lowercased()
        var shown = judged.filter { summary, state in
            (query.state == nil || query.state == state)
                && (needle.isEmpty || summary.deviceID.rawValue.lowercased().contains(needle)
                    || summary.group.lowercased().contains(needle))
        }
        let order = FleetState.allCases
        shown.sort { a, b in
            let (x, y) = query.descending ? (b, a) : (a, b)
            switch query.sort {
            case "group": return (x.0.group, x.0.deviceID.rawValue) < (y.0.group, y.0.deviceID.rawValue)
            case "policy": return (x.0.policy ?? "", x.0.deviceID.rawValue) < (y.0.policy ?? "", y.0.deviceID.rawValue)
            case "last":
                return (x.0.last?.at ?? .distantPast, x.0.deviceID.rawValue)
                    < (y.0.last?.at ?? .distantPast, y.0.deviceID.rawValue)
            case "rules":
                return (x.0.last?.failures.count ?? 0, x.0.deviceID.rawValue)
                    < (y.0.last?.failures.count ?? 0, y.0.deviceID.rawValue)
            case "id": return x.0.deviceID.rawValue < y.0.deviceID.rawValue
            default:
                let i = order.firstIndex(of: x.1) ?? 0
                let j = order.firstIndex(of: y.1) ?? 0
                return (i, x.0.deviceID.rawValue) < (j, y.0.deviceID.rawValue)
            }
        }
        let rows = shown.map { summary, state in
            Row(
                id: summary.deviceID.rawValue, group: summary.group, policy: summary.policy ?? "none",
                state: state.rawValue, stateLabel: state.label, when: summary.last.map { display($0.at) },
                whenISO: summary.last.map { $0.at.formatted(.iso8601) },
                failedRules: summary.last?.failures.map(\.rule) ?? [], refusal: summary.last?.refusal ?? "")
        }
        let columns = FleetQuery.columns.map { column in
            Column(
                label: column.label, link: query.link(sortingBy: column.key), current: column.key == query.sort,
                direction: query.descending ? "descending" : "ascending")
        }
        return render(
            "fleetRegion",
            FleetRegion(counts: counts, columns: columns, devices: rows, shown: rows.count, total: devices.count))
    }

    /// The fleet page around its region.
    static func fleetPage(region: String, _ query: FleetQuery) -> String {
        let options =
            [Option(value: "", label: "any", selected: query.state == nil)]
            + FleetState.allCases.map { Option(value: $0.rawValue, label: $0.label, selected: query.state == $0) }
        return render("fleet", FleetPage(query: query.text, sort: query.sort, stateOptions: options, region: region))
    }

    struct RuleView {
        let rule: String, expected: String, actual: String, pcr: String, event: String
        /// The named event decoded from the stored boot record, with how far the quote proves it.
        let decoded: EventView?
    }
    struct FailureView {
        let at: String, atISO: String, policy: String, refusal: String?, hasRules: Bool, rules: [RuleView]
    }
    struct HistoryView {
        let at: String, atISO: String, pass: Bool, policy: String, failedRules: [String], refusal: String?
    }
    struct EVEView { let uuid: String, serial: String, subject: String, sha256: String }
    struct EventView {
        let index: Int, pcr: String, type: String, text: String, digest: String, proof: String, proofLabel: String
    }
    struct PCRChangeView { let bank: String, pcr: Int, before: String, after: String, unlogged: Bool }
    struct EventChangeView { let kind: String, before: EventView?, after: EventView? }
    struct BootAppView { let path: String, digest: String }
    struct BootView {
        let at: String, atISO: String, secureBoot: String, bank: String, bootApplications: [BootAppView]
        let kernelCommandLines: [String], events: [EventView], eventCount: Int, truncated: Int?
    }
    struct DiffView {
        let since: String, sinceISO: String, same: Bool, pcrs: [PCRChangeView], hasPCRs: Bool,
            events: [EventChangeView], hasEvents: Bool, moreEvents: Int?
    }
    struct DevicePage {
        let id: String, group: String, policy: String, status: String, state: String, stateLabel: String
        let identityProof: String, ekFingerprint: String?, akName: String?, eve: EVEView?
        let onboarded: String, onboardedISO: String, node: String?
        let latestFailure: FailureView?, history: [HistoryView]
        let boot: BootView?, noBoot: String?, diff: DiffView?, noDiff: String?
    }

    static func eventView(_ e: BootRecord.Event) -> EventView {
        let label =
            switch e.proof {
            case .bound: "attested: the data hashes to its digest"
            case .described: "digest attested; the data is the device's description"
            case .unbound: "EDITED: the data does not hash to its digest"
            case .unproven:
                e.pcr == nil
                    ? "not attested: it extends no PCR" : "not attested: its PCR did not replay to the quoted value"
            }
        return EventView(
            index: e.index, pcr: e.pcr.map(String.init) ?? "—", type: e.type, text: e.text, digest: e.digest,
            proof: e.proof.rawValue, proofLabel: label)
    }

    /// One device: identity, why its last attestation failed (rule, expected, found, PCR, event decoded), what its
    /// boot showed and how that differs from the last boot that passed, its history.
    static func devicePage(_ d: Admin.DeviceDetail, boot: DashboardBoot, now: Date, freshFor: TimeInterval) -> String {
        let state = FleetState.of(d.summary, now: now, freshFor: freshFor)
        let latest = d.history.first
        let record = boot.latest?.record
        // The decoded events are the failed attestation's own (a verdict stored between the two reads is not mixed in).
        let failedRecord = boot.latest.flatMap { $0.at == latest?.at ? $0.record : nil }
        let failure = latest.flatMap { record -> FailureView? in
            guard !record.pass else { return nil }
            let rules = record.failures.map { f in
                RuleView(
                    rule: f.rule, expected: f.expected, actual: f.actual,
                    pcr: f.pcr.map { "\(f.bank.map { "\($0) " } ?? "")\($0)" } ?? "—",
                    event: f.event.map(String.init) ?? "—",
                    decoded: f.event.flatMap { failedRecord?.event($0) }.map(eventView))
            }
            return FailureView(
                at: display(record.at), atISO: record.at.formatted(.iso8601), policy: record.policy ?? "none",
                refusal: record.refusal, hasRules: !rules.isEmpty, rules: rules)
        }
        let history = d.history.map { r in
            HistoryView(
                at: display(r.at), atISO: r.at.formatted(.iso8601), pass: r.pass, policy: r.policy ?? "none",
                failedRules: r.failures.map(\.rule), refusal: r.refusal)
        }
        var bootView: BootView?
        var noBoot: String?
        if let latest = boot.latest, let record {
            bootView = BootView(
                at: display(latest.at), atISO: latest.at.formatted(.iso8601),
                secureBoot: record.secureBoot.map { $0 ? "enabled" : "disabled" } ?? "not shown by the log",
                bank: record.bank,
                bootApplications: record.bootApplications.map { BootAppView(path: $0.path, digest: $0.digest) },
                kernelCommandLines: record.kernelCommandLines, events: record.events.map(eventView),
                eventCount: record.events.count, truncated: record.truncated > 0 ? record.truncated : nil)
        } else if boot.latest != nil {
            noBoot = "The latest attestation kept no boot record: its evidence was refused before its log was verified."
        }
        var diff: DiffView?
        var noDiff: String?
        if let latest = boot.latest, !latest.pass {
            if let pass = boot.lastPass, let before = pass.record, let record {
                let change = BootDiff(from: before, to: record)
                diff = DiffView(
                    since: display(pass.at), sinceISO: pass.at.formatted(.iso8601), same: change.isEmpty,
                    pcrs: change.pcrs.map {
                        PCRChangeView(
                            bank: $0.bank, pcr: $0.pcr, before: $0.before ?? "not quoted",
                            after: $0.after ?? "not quoted",
                            unlogged: $0.before != nil && $0.after != nil && !change.eventsChanged(in: $0.pcr))
                    }, hasPCRs: !change.pcrs.isEmpty,
                    events: change.events.map {
                        EventChangeView(
                            kind: $0.kind.rawValue, before: $0.before.map(eventView), after: $0.after.map(eventView))
                    }, hasEvents: !change.events.isEmpty, moreEvents: change.moreEvents > 0 ? change.moreEvents : nil)
            } else if boot.lastPass != nil {
                noDiff = "The last passing attestation or this one kept no boot record to compare."
            } else {
                noDiff = "No attestation of this device has passed yet: there is nothing to compare with."
            }
        }
        return render(
            "device",
            DevicePage(
                id: d.summary.deviceID.rawValue, group: d.summary.group, policy: d.summary.policy ?? "none",
                status: d.summary.status, state: state.rawValue, stateLabel: state.label,
                identityProof: d.identityProof, ekFingerprint: d.ekFingerprint?.description, akName: d.akName,
                eve: d.eve.map {
                    EVEView(
                        uuid: $0.uuid, serial: $0.serial, subject: $0.deviceCertificateSubject,
                        sha256: $0.deviceCertificateSHA256)
                },
                onboarded: display(d.onboardedAt), onboardedISO: d.onboardedAt.formatted(.iso8601),
                node: d.node.map {
                    "\($0.phase), gate \($0.gateOpen ? "open" : "closed"): \($0.reason) (reported \(d.nodeReportedAt.map(display) ?? "?"))"
                },
                latestFailure: failure, history: history, boot: bootView, noBoot: noBoot, diff: diff, noDiff: noDiff))
    }

    struct AuditEntryView {
        let seq: Int64, at: String, atISO: String, actor: String, action: String, subject: String, outcome: String
        let detail: String
    }
    struct AuditReportView { let intact: Bool, entries: Int, firstBroken: Int?, reason: String }
    struct AuditPage {
        let csrf: String, query: String, report: AuditReportView?, last: AuditEntryView?,
            entries: [AuditEntryView], olderLink: String?
    }

    /// The audit log page: the chain's status (just verified, or as last recorded) and a page of entries.
    static func auditPage(_ audit: DashboardAudit, query: String, csrf: String, report: Admin.AuditReport?) -> String {
        func view(_ e: AuditLog.Entry) -> AuditEntryView {
            let at = Date(sqlMilliseconds: e.at)
            return AuditEntryView(
                seq: e.seq, at: display(at), atISO: at.formatted(.iso8601), actor: e.actor, action: e.action,
                subject: e.subject, outcome: e.outcome, detail: e.detail)
        }
        var olderLink: String?
        if let older = audit.older {
            var components = URLComponents()
            components.path = "/ui/audit"
            components.queryItems =
                [URLQueryItem(name: "before", value: String(older))]
                + (query.isEmpty ? [] : [URLQueryItem(name: "q", value: query)])
            olderLink = components.string
        }
        return render(
            "audit",
            AuditPage(
                csrf: csrf, query: query,
                report: report.map {
                    AuditReportView(
                        intact: $0.intact, entries: $0.entries, firstBroken: $0.firstBroken, reason: $0.reason ?? "")
                }, last: audit.lastVerification.map(view), entries: audit.entries.map(view), olderLink: olderLink))
    }

    struct Layout {
        let title: String, signedIn: Bool, role: String, csrf: String, content: String, live: Bool
    }

    /// A whole page: the layout around `content` (already rendered by these templates).
    static func page(title: String, session: DashboardSession?, content: String, live: Bool = false) -> String {
        render(
            "layout",
            Layout(
                title: title, signedIn: session != nil, role: session?.caller.role.rawValue ?? "",
                csrf: session?.csrf ?? "", content: content, live: live))
    }

    struct Message { let heading: String, text: String }
    static func message(_ heading: String, _ text: String) -> String {
        render("message", Message(heading: heading, text: text))
    }

    struct Login { let csrf: String, error: String? }
    static func login(csrf: String, error: String?) -> String { render("login", Login(csrf: csrf, error: error)) }

    static func render(_ template: String, _ object: Any) -> String {
        DashboardTemplates.library.render(object, withTemplate: template) ?? ""
    }

    /// A time for people, in UTC: "2026-12-02 15:37:05 UTC".
    static func display(_ date: Date) -> String {
        let iso = date.formatted(.iso8601)
        return iso.replacingOccurrences(of: "T", with: " ").replacingOccurrences(of: "Z", with: " UTC")
    }
}
