import ControllerProtocol
import Foundation
import Policy

/// The policies pages: every policy with its versions, where each is assigned and what the linter says; one policy's
/// versions with its explanation, source and a diff between two versions; the upload form for policy-admins.
extension DashboardPages {
    struct LintView { let level: String, message: String }
    struct PolicyRow {
        let name: String, link: String, latest: Int, count: Int, usedBy: [String], lint: LintView
    }
    /// One lint error of an upload: where, what, and the source line with a caret under the column.
    struct LintErrorView { let location: String, message: String, source: String?, caret: String? }
    struct UploadView {
        let csrf: String, name: String, yaml: String, parents: [Option], errors: [LintErrorView], hasErrors: Bool
    }
    struct PoliciesPage {
        let rows: [PolicyRow], hasRows: Bool, role: String, canUpload: Bool, upload: UploadView
    }

    /// What an upload form carried, to show it again with its errors.
    struct PolicyUploadForm: Sendable {
        var name = ""
        var yaml = ""
        var parent = ""
    }

    /// `/ui/policies`: the list, and the upload form when the role allows it.
    static func policiesPage(
        _ policies: DashboardPolicies, session: DashboardSession, form: PolicyUploadForm = .init(),
        errors: [LintErrorView] = []
    ) -> String {
        let names = Array(Set(policies.versions.map(\.name))).sorted()
        let rows = names.compactMap { name -> PolicyRow? in
            let versions = policies.versions(of: name)
            guard let latest = versions.last else { return nil }
            return PolicyRow(
                name: name, link: "/ui/policies/\(name)", latest: latest.version, count: versions.count,
                usedBy: versions.flatMap { v in v.assignedTo.map { "\($0) → \(v.version)" } },
                lint: LintView(level: latest.lint.level.rawValue, message: latest.lint.message))
        }
        let parents =
            [Option(value: "", label: "nothing", selected: form.parent.isEmpty)]
            + policies.versions.map { v in
                let value = "\(v.name)@\(v.version)"
                return Option(value: value, label: value, selected: form.parent == value)
            }
        return render(
            "policies",
            PoliciesPage(
                rows: rows, hasRows: !rows.isEmpty, role: session.caller.role.rawValue,
                canUpload: session.caller.role >= .policyAdmin,
                upload: UploadView(
                    csrf: session.csrf, name: form.name, yaml: form.yaml, parents: parents, errors: errors,
                    hasErrors: !errors.isEmpty)))
    }

    /// A lint error as the upload form shows it: the location and message, and the offending line of `yaml`.
    static func lintError(_ error: PolicyError, file: String, yaml: String) -> LintErrorView {
        guard let (line, column) = DashboardPolicies.position(error, in: file) else {
            return LintErrorView(location: error.location, message: error.message, source: nil, caret: nil)
        }
        let lines = yaml.split(separator: "\n", omittingEmptySubsequences: false)
        let source = lines.indices.contains(line - 1) ? String(lines[line - 1].prefix(300)) : nil
        let caret = source.map { String(repeating: " ", count: min(column - 1, $0.count)) + "^" }
        return LintErrorView(location: error.location, message: error.message, source: source, caret: caret)
    }

    struct VersionRow {
        let version: Int, link: String, sha256: String, created: String, createdISO: String, usedBy: [String]
        let lint: LintView, selected: Bool
    }
    struct DiffLine { let kind: String, sign: String, old: String, new: String, text: String }
    struct PolicyDiffView {
        let from: Int, to: Int, semantic: [String], hasSemantic: Bool, lines: [DiffLine], same: Bool
    }
    struct PolicyPage {
        let name: String, versions: [VersionRow], shown: Int, explanation: [String], yaml: String
        let parents: Int, lint: LintView, fromOptions: [Option], toOptions: [Option], diff: PolicyDiffView?
    }

    /// `/ui/policies/NAME?version=N&from=A&to=B`: versions, the shown version's explanation and source, a diff.
    static func policyPage(_ versions: [DashboardPolicies.Version], parameters: [String: String]) -> String? {
        guard let latest = versions.last else { return nil }
        let name = latest.name
        let shown =
            parameters["version"].flatMap(Int.init).flatMap { n in versions.first { $0.version == n } } ?? latest
        func load(_ v: DashboardPolicies.Version) -> AttestationPolicy? {
            try? DashboardPolicies.load(yaml: v.yaml, parents: v.parents, file: "\(v.name).yaml")
        }
        let rows = versions.reversed().map { v in
            VersionRow(
                version: v.version, link: "/ui/policies/\(name)?version=\(v.version)",
                sha256: String(v.sha256.prefix(16)), created: display(v.createdAt),
                createdISO: v.createdAt.formatted(.iso8601), usedBy: v.assignedTo,
                lint: LintView(level: v.lint.level.rawValue, message: v.lint.message),
                selected: v.version == shown.version)
        }
        let previous = versions.last { $0.version < shown.version }
        let from = parameters["from"].flatMap(Int.init).flatMap { n in versions.first { $0.version == n } } ?? previous
        let to = parameters["to"].flatMap(Int.init).flatMap { n in versions.first { $0.version == n } } ?? shown
        var diff: PolicyDiffView?
        if let from, from.version != to.version {
            var semantic: [String] = []
            if let a = load(from), let b = load(to) { semantic = PolicyDiff.lines(old: a, new: b) }
            let lines = textDiff(old: from.yaml, new: to.yaml)
            diff = PolicyDiffView(
                from: from.version, to: to.version, semantic: semantic, hasSemantic: !semantic.isEmpty, lines: lines,
                same: !lines.contains { $0.kind != "same" && $0.kind != "skip" })
        }
        let options = { (selected: Int?) in
            versions.reversed().map {
                Option(value: String($0.version), label: "version \($0.version)", selected: $0.version == selected)
            }
        }
        return render(
            "policy",
            PolicyPage(
                name: name, versions: rows, shown: shown.version,
                explanation: load(shown).map { PolicyExplainer.text($0).split(separator: "\n").map(String.init) } ?? [],
                yaml: shown.yaml, parents: shown.parents.count,
                lint: LintView(level: shown.lint.level.rawValue, message: shown.lint.message),
                fromOptions: options(from?.version), toOptions: options(to.version), diff: diff))
    }

    /// The most source lines a diff compares (a policy is at most 1 MiB).
    static let maximumDiffLines = 20_000

    /// A line diff of two sources, with unchanged runs longer than six lines folded to three lines of context.
    static func textDiff(old: String, new: String) -> [DiffLine] {
        let a = Array(old.split(separator: "\n", omittingEmptySubsequences: false).prefix(maximumDiffLines))
        let b = Array(new.split(separator: "\n", omittingEmptySubsequences: false).prefix(maximumDiffLines))
        var removed = Set<Int>()
        var inserted = Set<Int>()
        for change in b.difference(from: a) {
            switch change {
            case .remove(let offset, _, _): removed.insert(offset)
            case .insert(let offset, _, _): inserted.insert(offset)
            }
        }
        var all: [DiffLine] = []
        var i = 0
        var j = 0
        while i < a.count || j < b.count {
            if i < a.count, removed.contains(i) {
                all.append(DiffLine(kind: "del", sign: "-", old: String(i + 1), new: "", text: String(a[i])))
                i += 1
            } else if j < b.count, inserted.contains(j) {
                all.append(DiffLine(kind: "add", sign: "+", old: "", new: String(j + 1), text: String(b[j])))
                j += 1
            } else if i < a.count, j < b.count {
                all.append(
                    DiffLine(kind: "same", sign: " ", old: String(i + 1), new: String(j + 1), text: String(b[j])))
                i += 1
                j += 1
            } else {
                break  // not reached: what the difference does not remove or insert is common to both
            }
        }
        // Fold long unchanged runs.
        var out: [DiffLine] = []
        var run: [DiffLine] = []
        func flush(atEnd: Bool) {
            let head = out.isEmpty ? 0 : 3
            let tail = atEnd ? 0 : 3
            if run.count > head + tail + 1 {
                out += run.prefix(head)
                out.append(
                    DiffLine(
                        kind: "skip", sign: "…", old: "", new: "", text: "\(run.count - head - tail) unchanged lines"))
                out += run.suffix(tail)
            } else {
                out += run
            }
            run = []
        }
        for line in all {
            if line.kind == "same" {
                run.append(line)
            } else {
                flush(atEnd: false)
                out.append(line)
            }
        }
        flush(atEnd: true)
        return out
    }
}
