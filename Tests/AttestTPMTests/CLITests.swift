import Foundation
import ProcessSupport
import Testing
import VigilTestSupport

/// The `vigil` verifier-side commands as users run them: exit codes, messages on stderr, JSON shapes.
@Suite struct CLITests {
    static let root = SoftwareTPM.repositoryRoot
    static func vigil(_ args: [String]) throws -> ProcessResult {
        try ProcessRunner.run(ProcessRunner.vigilExecutable, args)
    }
    static func path(_ p: String) -> String { root.appendingPathComponent(p).path }

    @Test func policyLintExitsZeroOnGoodPoliciesAndOneWithAPositionOnBadOnes() throws {
        let good = try Self.vigil(
            ["policy", "lint"]
                + [
                    "base-hygiene", "strict-secureboot-linux", "systemd-boot-uki", "measured-boot-no-secureboot",
                    "eve-like-pcr-pinning",
                ].map { Self.path("policies/\($0).yaml") })
        #expect(good.status == 0, "\(good.stderr)")
        let dir = try ProcessRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("bad.yaml")
        try "id: bad\nversion: 1\nboot:\n  secure_boot: required\n  kernel_cmdlne:\n    forbidden: [init]\n".write(
            to: bad, atomically: true, encoding: .utf8)
        let r = try Self.vigil(["policy", "lint", bad.path])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("\(bad.path):5:3: unknown key \"kernel_cmdlne\" in boot"), "\(r.stderr)")
        let permissive = dir.appendingPathComponent("any.yaml")
        try "id: any\nversion: 1\naccept: any\n".write(to: permissive, atomically: true, encoding: .utf8)
        let p = try Self.vigil(["policy", "lint", permissive.path])
        #expect(p.status == 0)
        #expect(p.stdout.contains("warning: policy \"any\" accepts any device"))
    }

    @Test func policyTestOnABareLogSaysTheEvidenceWasUnsigned() throws {
        let pass = try Self.vigil([
            "policy", "test", Self.path("policies/captured/fedora37-sdboot-sha256.yaml"), "--eventlog",
            Self.path("Tests/AttestTests/Fixtures/eventlogs/fedora37-sdboot-sha256.bin"),
        ])
        #expect(pass.status == 0)
        #expect(pass.stdout.contains("unsigned evidence"))
        let fail = try Self.vigil([
            "policy", "test", Self.path("policies/captured/fedora37-sdboot-sha256.yaml"), "--eventlog",
            Self.path("Tests/AttestTests/Fixtures/eventlogs/gce-rhel8-sb.bin"), "--json",
        ])
        #expect(fail.status == 1)
        let verdict = try #require(try JSONSerialization.jsonObject(with: Data(fail.stdout.utf8)) as? [String: Any])
        #expect(verdict["pass"] as? Bool == false)
        #expect(verdict["unsigned_evidence"] as? Bool == true)
    }

    @Test func ekVerifyExitCodes() throws {
        let ok = try Self.vigil([
            "ek", "verify", Self.path("Tests/PolicyTests/Fixtures/ekcerts/leaf/stm-rsa-ek-ca05-ffpadded.der"), "--ca",
            Self.path("Tests/PolicyTests/Fixtures/ekcerts/vendor-ca"),
        ])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("model ST33HTPHAHB4"))
        let no = try Self.vigil([
            "ek", "verify", Self.path("Tests/PolicyTests/Fixtures/ekcerts/leaf/stm-ecc-ek-ca01.der"), "--ca",
            Self.path("Tests/PolicyTests/Fixtures/ekcerts/vendor-ca"),
        ])
        #expect(no.status == 1)
        #expect(
            no.stderr.contains("vigil: issuer not found: CN=GlobalSign Trusted Platform Module ECC Root CA"),
            "\(no.stderr)")
    }

    @Test func eventlogReplayJSONHasThePromisedShape() throws {
        let r = try Self.vigil([
            "eventlog", "replay", "--json", Self.path("Tests/AttestTests/Fixtures/eventlogs/gce-rhel8-sb.bin"),
        ])
        #expect(r.status == 0)
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: [String: [String: String]]])
        let pcrs = try #require(object["pcrs"])
        #expect(Set(pcrs.keys) == ["sha1", "sha256", "sha384"])
        #expect(pcrs["sha256"]?["0"]?.count == 64)
        let bad = try Self.vigil([
            "eventlog", "show", Self.path("Tests/AttestTests/Fixtures/quotes/keylime_checkquote/ak.pem"),
        ])
        #expect(bad.status == 1)
        #expect(bad.stderr.hasPrefix("vigil: "))
    }

    /// The benchmark's JSON carries the figures BENCHMARKS.md and scripts/benchmark.sh read (shape only: no
    /// timing is asserted).
    @Test func benchmarkJSONHasTheFiguresTheBenchmarkScriptReads() throws {
        let verifier = try Self.vigil([
            "benchmark", "--seconds", "0.05", "--json",
            "--eventlog", Self.path("Tests/AttestTests/Fixtures/eventlogs/fedora37-sdboot-sha256.bin"),
        ])
        #expect(verifier.status == 0, "\(verifier.stderr)")
        let v = try #require(try JSONSerialization.jsonObject(with: Data(verifier.stdout.utf8)) as? [String: Any])
        for key in ["quote_verify_per_s", "p256_verify_per_s", "eventlog_mb_per_s", "policy_eval_us"] {
            #expect(((v[key] as? Double) ?? 0) > 0, "\(key) in \(verifier.stdout)")
        }
        #expect((v["eventlog_us"] as? [String: Double])?.keys.sorted() == ["fedora37-sdboot-sha256.bin"])

        guard SoftwareTPM.canRun else { return }  // always true under CI=true, where a missing swtpm fails below
        let session = try VigilCLISession()
        defer { session.close() }
        let device = try session.vigil(["benchmark", "--tpm", "--seconds", "0.1", "--json"])
        #expect(device.status == 0, "\(device.stderr)")
        let t = try #require(try JSONSerialization.jsonObject(with: Data(device.stdout.utf8)) as? [String: Any])
        for key in ["vigil_getrandom_us", "esapi_getrandom_us"] {
            #expect(((t[key] as? Double) ?? 0) > 0, "\(key) in \(device.stdout)")
        }
        #expect(t["rounds"] as? Int == 3 && t["commands_per_round"] as? Int == 1000)
    }

    @Test func quoteVerifyAcceptsTheGCEQuoteWithItsLogAndRefusesAWrongNonce() throws {
        let dir = try ProcessRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = "Tests/AttestTests/Fixtures/quotes/gce_cos85_nonce9009/gce_cos85_nonce9009"
        let all = try JSONDecoder().decode(
            [String: [String: String]].self,
            from: Data(contentsOf: URL(fileURLWithPath: Self.path("\(base).quote_pcrs.json"))))
        let pcrs = dir.appendingPathComponent("pcrs.json")
        try JSONEncoder().encode(["sha384": all["sha384"] ?? [:]]).write(to: pcrs)
        func verify(_ nonce: String) throws -> ProcessResult {
            try Self.vigil([
                "quote", "verify", "--ak", Self.path("\(base).ak_pub.tpmt_public.bin"), "--message",
                Self.path("\(base).quote2_sha384.attest.bin"),
                "--signature", Self.path("\(base).quote2_sha384.sig.bin"), "--pcrs", pcrs.path, "--nonce", nonce,
                "--eventlog", Self.path("\(base).eventlog.bin"),
            ])
        }
        let ok = try verify("9009")
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("event log matches the quote"))
        let bad = try verify("9008")
        #expect(bad.status == 1)
        #expect(bad.stderr == "vigil: quote: the signed nonce 9009 is not the verifier's nonce 9008\n")
    }
}
