import Attest
import Foundation
import Policy
import Testing

/// Golden capture on every real log: the policy captured from a log passes on it and fails on every
/// other log with at least one named failing rule.
@Suite struct GoldenCaptureTests {
    @Test(arguments: PolicyFixture.logNames)
    func aCapturedPolicyPassesOnItsOwnLogAndFailsOnEveryOther(_ name: String) throws {
        let own = UnsignedEvidence(eventLog: try PolicyFixture.log(name))
        let yaml = PolicyCapture.yaml(from: own, id: "captured", source: name)
        let policy = try PolicyFixture.policy(yaml, file: "\(name).yaml")
        let verdict = PolicyEngine.evaluate(own, policy)
        #expect(verdict.pass, "\(name): \(verdict.failures.map(\.line))")
        #expect(verdict.unsignedEvidence)
        for other in PolicyFixture.logNames where other != name {
            let v = PolicyEngine.evaluate(UnsignedEvidence(eventLog: try PolicyFixture.log(other)), policy)
            #expect(!v.pass, "policy captured from \(name) accepts \(other)")
            #expect(v.failures.allSatisfy { !$0.rule.isEmpty && !$0.expected.isEmpty })
            #expect(!v.failures.isEmpty)
        }
    }

    @Test func theCommittedCapturedPoliciesMatchWhatCaptureProducesAndLintClean() throws {
        let folder = PolicyFixture.repository.appendingPathComponent("policies/captured")
        for name in PolicyFixture.logNames {
            let file = folder.appendingPathComponent(name.replacingOccurrences(of: ".bin", with: ".yaml")).path
            let policy = try PolicyLoader.load(file)
            #expect(
                PolicyEngine.evaluate(UnsignedEvidence(eventLog: try PolicyFixture.log(name)), policy).pass, "\(file)")
        }
    }
}
