import Attest
import Foundation
import Policy
import Testing

/// The policies shipped in policies/ lint clean, explain themselves, and agree with the JSON Schema.
@Suite struct ExamplePolicyTests {
    static let folder = PolicyFixture.repository.appendingPathComponent("policies")
    static let examples = [
        "base-hygiene", "strict-secureboot-linux", "systemd-boot-uki", "measured-boot-no-secureboot",
        "eve-like-pcr-pinning", "eve-measured-boot",
    ]

    @Test(arguments: examples)
    func examplePoliciesLintCleanAndExplainThemselves(_ name: String) throws {
        let policy = try PolicyLoader.load(Self.folder.appendingPathComponent("\(name).yaml").path)
        #expect(!policy.acceptAny)
        #expect(!PolicyEngine.ruleIDs(of: policy).isEmpty)
        #expect(PolicyExplainer.sentences(policy).count == PolicyEngine.ruleIDs(of: policy).count)
    }

    @Test func strictSecureBootExtendsTheBaseAndCarriesItsRules() throws {
        let p = try PolicyLoader.load(Self.folder.appendingPathComponent("strict-secureboot-linux.yaml").path)
        #expect(p.freshness?.maxNonceAgeSeconds == 120)
        #expect(p.boot?.secureBoot == true)
        #expect(p.boot?.bootApplications?.allowed.count == 3)
        #expect(p.warnOnly == ["boot.dbx.min_entries"])
    }

    @Test func eveLikePinningPassesOnItsDevicesSignedQuoteAndNamesThePCRsOtherwise() async throws {
        let p = try PolicyLoader.load(Self.folder.appendingPathComponent("eve-like-pcr-pinning.yaml").path)
        let v = PolicyEngine.evaluate(try await RuleTests.signed(required: PolicyEngine.requiredSelection(for: p)), p)
        #expect(v.pass, "\(v.failures.map(\.line))")
        let other = PolicyEngine.evaluate(UnsignedEvidence(eventLog: try PolicyFixture.log("gce-rhel8-sb.bin")), p)
        #expect(!other.pass)
        #expect(other.failures.contains { $0.rule == "pcrs.sha256.0" && $0.pcr == 0 })
    }

    @Test func diffSaysWhatANewVersionAcceptsAndRefuses() throws {
        let old = try PolicyFixture.policy(
            "id: p\nversion: 1\nboot:\n  secure_boot: required\n  boot_applications:\n    allowed: [\(String(repeating: "a", count: 64))]\n"
        )
        let new = try PolicyFixture.policy(
            "id: p\nversion: 2\nboot:\n  boot_applications:\n    allowed: [\(String(repeating: "b", count: 64))]\n  forbid: [error_separators]\n"
        )
        let lines = PolicyDiff.lines(old: old, new: new)
        #expect(lines.contains { $0.hasPrefix("- boot.secure_boot") })
        #expect(lines.contains { $0.hasPrefix("+ boot.forbid.error_separators") })
        #expect(lines.contains("    now accepts \(String(repeating: "b", count: 64))"))
        #expect(lines.contains("    now refuses \(String(repeating: "a", count: 64))"))
    }

    @Test func theJSONSchemaAllowsExactlyTheKeysTheParserAllows() throws {
        let data = try Data(contentsOf: Self.folder.appendingPathComponent("schema/policy.schema.json"))
        let schema = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let properties = try #require(schema["properties"] as? [String: Any])
        #expect(Set(properties.keys) == PolicyLoader.allowedKeys["policy"])
        for section in ["identity", "freshness", "pcrs", "boot"] {
            let s = try #require(properties[section] as? [String: Any])
            let keys = Set(try #require(s["properties"] as? [String: Any]).keys)
            #expect(keys == PolicyLoader.allowedKeys[section], "\(section)")
        }
    }
}
