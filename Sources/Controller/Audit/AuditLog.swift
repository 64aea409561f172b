import Attest
public import ControllerProtocol
import Crypto
public import Foundation

/// The controller's append-only, hash-chained audit log: every onboarding, nonce, verdict, release, refusal
/// and admin action, written in the same transaction as what it records (both are there or neither).
///
/// Entry `n` carries `prev_digest` = digest of entry `n − 1` (64 zeros for the first) and
/// `digest` = SHA-256 over its own fields, each length-prefixed, and `prev_digest`. Editing, deleting or
/// reordering any entry breaks the chain at that entry or the next; ``verify(_:)`` names the first break.
/// (An attacker who can rewrite the whole tail consistently is not detected by the chain alone: export the
/// head digest, `vigil admin audit verify` prints it, to somewhere they cannot write.)
public enum AuditLog {
    /// Who did it.
    public enum Actor: Sendable, Hashable, CustomStringConvertible {
        /// A device, authenticated by its device key.
        case device(DeviceID)
        /// A device being onboarded (not yet authenticated), by its EK fingerprint.
        case enrolling(EKFingerprint)
        /// A security-team token, by the first 12 hex digits of its hash, with its role.
        case admin(tokenHash: String, role: Admin.Role)
        /// An EVE device registering, by the first 16 hex digits of its onboarding certificate's SHA-256.
        case eveOnboarding(String)
        /// A request that did not authenticate.
        case anonymous
        /// The controller itself (first start, migrations).
        case controller

        /// How the audit log names the actor.
        public var description: String {
            switch self {
            case .device(let id): "device:\(id)"
            case .enrolling(let f): "ek:\(f.hex.prefix(16))"
            case .admin(let h, let role): "admin:\(h.prefix(12))(\(role.rawValue))"
            case .eveOnboarding(let f): "eve-onboarding:\(f.prefix(16))"
            case .anonymous: "anonymous"
            case .controller: "controller"
            }
        }
    }

    /// The digest of the entry before the first.
    public static let genesis = String(repeating: "0", count: 64)
    /// The longest detail stored (longer ones are cut, with a note).
    static let maximumDetail = 4096

    /// Appends an entry inside `tx` (the caller's transaction) and returns its sequence number.
    @discardableResult
    public static func append(
        _ tx: any SQLTransaction, backend: any SQLBackend, at: Date, actor: Actor, action: String, subject: String,
        outcome: String, detail: String = ""
    ) async throws(ControllerError) -> Int64 {
        try await backend.lockAuditChain(tx)
        let last = try await tx.first("SELECT seq, digest FROM audit ORDER BY seq DESC LIMIT 1", [])
        let seq = (try last?.integer("seq") ?? 0) + 1
        let prev = try last?.text("digest") ?? genesis
        var d = detail
        if d.utf8.count > maximumDetail {
            d = String(decoding: d.utf8.prefix(maximumDetail), as: UTF8.self) + "… (cut)"
        }
        let entry = Entry(
            seq: seq, at: at.sqlMilliseconds, actor: actor.description, action: action, subject: subject,
            outcome: outcome, detail: d, prevDigest: prev)
        try await tx.execute(
            "INSERT INTO audit (seq, at, actor, action, subject, outcome, detail, prev_digest, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                .integer(seq), .integer(entry.at), .text(entry.actor), .text(action), .text(subject), .text(outcome),
                .text(d), .text(prev), .text(entry.digest),
            ])
        return seq
    }

    /// One stored entry.
    public struct Entry: Sendable, Hashable, Codable {
        /// Position in the chain, from 1.
        public let seq: Int64
        /// Milliseconds since 1970.
        public let at: Int64
        /// ``Actor`` as text.
        public let actor: String
        /// What was done (`onboard`, `attest`, `secret.release`, `policy.add`, …).
        public let action: String
        /// What it was done to (a device id, a policy name, …).
        public let subject: String
        /// `ok`, `pass`, `fail`, `refused:<code>`.
        public let outcome: String
        /// Details (never secrets).
        public let detail: String
        /// The previous entry's digest.
        public let prevDigest: String

        /// SHA-256 (hex) over every field, each as its UTF-8 length (8 bytes, big-endian) and bytes.
        public var digest: String {
            var h = SHA256()
            for field in [String(seq), String(at), actor, action, subject, outcome, detail, prevDigest] {
                let bytes = Array(field.utf8)
                withUnsafeBytes(of: UInt64(bytes.count).bigEndian) { h.update(bufferPointer: $0) }
                h.update(data: bytes)
            }
            return Hex.encode(h.finalize())
        }
    }

    /// Recomputes the chain from the first entry and names the first one whose sequence, link or digest is wrong.
    public static func verify(_ backend: any SQLBackend) async throws(ControllerError) -> (Admin.AuditReport, String) {
        try await backend.transaction { tx throws(ControllerError) in
            let rows = try await tx.query(
                "SELECT seq, at, actor, action, subject, outcome, detail, prev_digest, digest FROM audit ORDER BY seq",
                [])
            var prev = genesis
            var expectedSeq: Int64 = 1
            for row in rows {
                let entry = Entry(
                    seq: try row.requiredInteger("seq"), at: try row.requiredInteger("at"),
                    actor: try row.requiredText("actor"), action: try row.requiredText("action"),
                    subject: try row.requiredText("subject"), outcome: try row.requiredText("outcome"),
                    detail: try row.requiredText("detail"), prevDigest: try row.requiredText("prev_digest"))
                let stored = try row.requiredText("digest")
                var broken: String?
                if entry.seq != expectedSeq {
                    broken =
                        "sequence \(entry.seq) where \(expectedSeq) was expected (an entry was deleted or inserted)"
                } else if entry.prevDigest != prev {
                    broken =
                        "its prev_digest is not the digest of entry \(entry.seq - 1) (an entry before it was changed)"
                } else if entry.digest != stored {
                    broken = "its contents do not hash to its stored digest (the entry was edited)"
                }
                if let broken {
                    return (
                        Admin.AuditReport(
                            entries: rows.count, intact: false, firstBroken: Int(entry.seq), reason: broken), prev
                    )
                }
                prev = stored
                expectedSeq += 1
            }
            return (Admin.AuditReport(entries: rows.count, intact: true, firstBroken: nil, reason: nil), prev)
        }
    }
}
