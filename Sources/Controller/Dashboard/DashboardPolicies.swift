import ControllerProtocol
import Foundation
import Policy

/// The policies page's data: every stored version with its source, the groups and devices it is assigned to, and
/// what linting it today says (a version stored under an older controller may lint differently now).
struct DashboardPolicies: Sendable {
    /// What the linter says of one version.
    struct Lint: Sendable {
        enum Level: String, Sendable { case ok, warning, error }
        let level: Level
        /// "12 rules", or the warning, or "file:line:column: message".
        let message: String
    }

    /// One stored version.
    struct Version: Sendable {
        let name: String
        let version: Int
        let yaml: String
        let parents: [String]
        let sha256: String
        let createdAt: Date
        /// `group:lab`, `device:vd-…`.
        let assignedTo: [String]
        let lint: Lint
    }

    /// The most versions the page lists.
    static let maximumVersions = 2000

    /// By name, then version (oldest first).
    let versions: [Version]

    /// The versions of `name`, oldest first.
    func versions(of name: String) -> [Version] { versions.filter { $0.name == name } }

    /// Lints a document with the documents it extends, as ``Controller/addPolicy(_:name:_:)`` does before storing.
    static func lint(yaml: String, parents: [String], file: String) -> Lint {
        do throws(PolicyError) {
            let document = try load(yaml: yaml, parents: parents, file: file)
            if document.acceptAny {
                return Lint(level: .warning, message: "accepts any device (accept: any)")
            }
            if !PolicyEngine.judgesBeyondSignature(document) {
                return Lint(
                    level: .warning,
                    message: "judges nothing beyond the quote's signature: any TPM-signed evidence passes")
            }
            return Lint(level: .ok, message: "\(PolicyEngine.ruleIDs(of: document).count) rules")
        } catch {
            return Lint(level: .error, message: error.description)
        }
    }

    /// Parses `yaml` as `file`, resolving `extends:` among `parents` only (named "`file` parent N").
    static func load(yaml: String, parents: [String], file: String) throws(PolicyError) -> AttestationPolicy {
        var others: [AttestationPolicy] = []
        for (i, text) in parents.enumerated() {
            others.append(try PolicyLoader.parse(text, file: "\(file) parent \(i + 1)"))
        }
        return try PolicyLoader.load(text: yaml, file: file, others: others)
    }

    /// "file:line:column" split from a lint error's location, when it has one in `file`.
    static func position(_ error: PolicyError, in file: String) -> (line: Int, column: Int)? {
        guard error.location.hasPrefix(file + ":") else { return nil }
        let parts = error.location.dropFirst(file.count + 1).split(separator: ":")
        guard parts.count == 2, let line = Int(parts[0]), let column = Int(parts[1]), line >= 1, column >= 1 else {
            return nil
        }
        return (line, column)
    }
}

extension Controller {
    /// Every stored policy version with its assignments and lint result (viewer role, checked by the session).
    func dashboardPolicies() async throws(ControllerError) -> DashboardPolicies {
        let (rows, assignments) = try await backend.transaction { tx throws(ControllerError) in
            (
                try await tx.query(
                    "SELECT name, version, yaml, parents, sha256, created_at FROM policies ORDER BY name, version LIMIT ?",
                    [.integer(Int64(DashboardPolicies.maximumVersions))]),
                try await tx.query("SELECT target, policy_name, policy_version FROM assignments", [])
            )
        }
        var byVersion: [String: [String]] = [:]
        for a in assignments {
            byVersion["\(try a.requiredText("policy_name"))@\(try a.requiredInteger("policy_version"))", default: []]
                .append(try a.requiredText("target"))
        }
        var versions: [DashboardPolicies.Version] = []
        for r in rows {
            let name = try r.requiredText("name")
            let version = Int(try r.requiredInteger("version"))
            let yaml = try r.requiredText("yaml")
            let parents =
                (try? JSONDecoder().decode([String].self, from: Data(try r.requiredText("parents").utf8))) ?? []
            versions.append(
                DashboardPolicies.Version(
                    name: name, version: version, yaml: yaml, parents: parents, sha256: try r.requiredText("sha256"),
                    createdAt: Date(sqlMilliseconds: try r.requiredInteger("created_at")),
                    assignedTo: (byVersion["\(name)@\(version)"] ?? []).sorted(),
                    lint: DashboardPolicies.lint(yaml: yaml, parents: parents, file: "\(name).yaml")))
        }
        return DashboardPolicies(versions: versions)
    }

    /// Refuses `caller` unless its role is at least `role`, audited as a refusal of `action` (the dashboard's forms
    /// reach the controller without the admin API's per-route check, so each checks here).
    func require(_ caller: AdminCaller, _ role: Admin.Role, for action: String, subject: String)
        async throws(ControllerError)
    {
        guard caller.role >= role else {
            let error = ControllerError.forbidden(
                "role_insufficient", "this needs the \(role.rawValue) role; you signed in with \(caller.role.rawValue)")
            await auditRefusal(actor: caller.actor, action: action, subject: subject, error)
            throw error
        }
    }
}
