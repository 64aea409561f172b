import Foundation
import Policy
import Testing

/// `freshness.offline_grace_seconds`: a node setting the controller signs into the result, not a rule. A policy
/// with only it still has no rules; more than a week is refused; a child inherits its parent's.
struct OfflineGraceTests {
    @Test func graceAloneIsNotARule() {
        do {
            _ = try PolicyLoader.parse("id: p\nversion: 1\nfreshness:\n  offline_grace_seconds: 60\n", file: "p.yaml")
            Issue.record("a policy with only a grace was accepted")
        } catch {
            #expect(error.code == .emptyRules, "\(error)")
        }
    }

    @Test func moreThanAWeekIsRefusedAtItsLine() {
        do {
            _ = try PolicyLoader.parse(
                "id: p\nversion: 1\naccept: any\nfreshness:\n  offline_grace_seconds: 604801\n", file: "p.yaml")
            Issue.record("accepted")
        } catch {
            #expect(error.description.contains("p.yaml:5:"), "\(error)")
            #expect(error.description.contains("more than a week"), "\(error)")
        }
    }

    @Test func aChildInheritsAndOverridesTheGrace() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("grace-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "id: base\nversion: 1\naccept: any\nfreshness:\n  offline_grace_seconds: 120\n  allow_reboot: true\n"
            .write(to: dir.appendingPathComponent("base.yaml"), atomically: true, encoding: .utf8)
        try "id: child\nversion: 1\nextends: base\nfreshness:\n  max_nonce_age_seconds: 30\n"
            .write(to: dir.appendingPathComponent("child.yaml"), atomically: true, encoding: .utf8)
        try "id: strict\nversion: 1\nextends: base\nfreshness:\n  offline_grace_seconds: 0\n"
            .write(to: dir.appendingPathComponent("strict.yaml"), atomically: true, encoding: .utf8)
        let child = try PolicyLoader.load(dir.appendingPathComponent("child.yaml").path)
        #expect(child.freshness?.offlineGraceSeconds == 120)
        #expect(child.freshness?.maxNonceAgeSeconds == 30)
        let strict = try PolicyLoader.load(dir.appendingPathComponent("strict.yaml").path)
        #expect(strict.freshness?.offlineGraceSeconds == 0)
    }
}
