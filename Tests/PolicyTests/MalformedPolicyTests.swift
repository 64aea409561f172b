import Foundation
import Policy
import Testing

/// Malformed and hostile policies get clear errors with file:line:column, never a crash or a hang.
@Suite struct MalformedPolicyTests {
    static func error(_ yaml: String) -> PolicyError? {
        do {
            _ = try PolicyFixture.policy(yaml, file: "p.yaml")
            return nil
        } catch {
            return error
        }
    }

    static let minimal = "id: p\nversion: 1\n"

    @Test func badYAMLNamesTheLineAndColumn() {
        let e = Self.error("id: p\nversion: 1\nboot: [secure_boot: required\n")
        #expect(e?.code == .syntax)
        #expect(e?.location.hasPrefix("p.yaml:") == true)
        #expect(e?.description.contains("YAML syntax error") == true, "\(String(describing: e))")
    }

    @Test func unknownKeysAreErrorsAtTheirPosition() {
        let e = Self.error(Self.minimal + "boot:\n  secure_bot: required\n")
        #expect(e?.code == .unknownKey)
        #expect(e?.location == "p.yaml:4:3")
        #expect(e?.message.contains("unknown key \"secure_bot\" in boot") == true)
    }

    @Test func wrongTypesAreErrors() {
        #expect(Self.error("id: p\nversion: one\npcrs:\n  sha256:\n    \"0\": any\n")?.code == .wrongType)
        let e = Self.error(Self.minimal + "freshness:\n  allow_reboot: maybe\n")
        #expect(e?.code == .wrongType)
        #expect(e?.location == "p.yaml:4:17")
        #expect(Self.error(Self.minimal + "boot: required\n")?.code == .wrongType)
        #expect(Self.error(Self.minimal + "pcrs:\n  sha256:\n    \"0\": [abcd]\n")?.code == .invalidValue)
        #expect(Self.error(Self.minimal + "pcrs:\n  sha256:\n    \"24\": any\n")?.code == .invalidValue)
    }

    @Test func duplicateKeysAndDuplicateIDsAreErrors() throws {
        let e = Self.error(Self.minimal + "boot:\n  secure_boot: required\n  secure_boot: forbidden\n")
        #expect(e?.code == .duplicate)
        #expect(e?.location == "p.yaml:5:3")
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = dir.appendingPathComponent("a.yaml"), b = dir.appendingPathComponent("b.yaml")
        try "id: same\nversion: 1\nboot:\n  secure_boot: required\n".write(to: a, atomically: true, encoding: .utf8)
        try "id: same\nversion: 2\nboot:\n  secure_boot: required\n".write(to: b, atomically: true, encoding: .utf8)
        #expect(throws: PolicyError.self) { try PolicyLoader.load(a.path, others: [a.path, b.path]) }
    }

    @Test func cyclicExtendsIsAnError() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        try "id: a\nversion: 1\nextends: b\n".write(
            to: dir.appendingPathComponent("a.yaml"), atomically: true, encoding: .utf8)
        try "id: b\nversion: 1\nextends: a\n".write(
            to: dir.appendingPathComponent("b.yaml"), atomically: true, encoding: .utf8)
        let e = #expect(throws: PolicyError.self) { try PolicyLoader.load(dir.appendingPathComponent("a.yaml").path) }
        #expect(e?.code == .cyclicExtends)
        #expect(e?.message == "cyclic extends: a → b → a")
        #expect(e?.location.hasSuffix(":3:10") == true, "\(String(describing: e))")
    }

    @Test func emptyRuleSetsAndImplicitAcceptAllAreErrors() {
        let e = Self.error(Self.minimal)
        #expect(e?.code == .emptyRules)
        #expect(e?.message.contains("accept: any") == true)
        #expect(Self.error(Self.minimal + "boot: {}\n")?.code == .emptyRules)
        #expect(Self.error(Self.minimal + "accept: all\n")?.code == .invalidValue)
        #expect(Self.error(Self.minimal + "accept: any\n") == nil)
    }

    @Test func undefinedReferenceSetsAndUnknownEnforceRulesAreErrors() {
        let undefined = Self.error(Self.minimal + "boot:\n  boot_applications:\n    allowed: [\"@nope\"]\n")
        #expect(undefined?.code == .notFound)
        #expect(
            undefined?.location == "p.yaml:5:15", "the error points at the reference: \(String(describing: undefined))")
        #expect(
            Self.error(Self.minimal + "boot:\n  secure_boot: required\nenforce:\n  boot.kernel_cmdline: false\n")?.code
                == .unknownKey)
        #expect(
            Self.error(Self.minimal + "boot:\n  secure_boot: required\nenforce:\n  boot.secure_boot: false\n") == nil)
    }

    @Test func aFiftyMegabyteFileIsRefusedBeforeParsing() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("big.yaml")
        let line = Data("# padding padding padding padding padding padding padding padding padding padding\n".utf8)
        var data = Data(Self.minimal.utf8)
        while data.count < 50 << 20 { data.append(line) }
        try data.write(to: file)
        let start = Date()
        let e = #expect(throws: PolicyError.self) { try PolicyLoader.load(file.path) }
        #expect(e?.code == .tooLarge)
        #expect(Date().timeIntervalSince(start) < 2)
    }

    @Test func deepNestingIsRefusedBeforeTheParserRecurses() {
        let flow =
            Self.minimal + "boot: " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
            + "\n"
        #expect(Self.error(flow)?.code == .tooLarge)
        var block = Self.minimal + "boot:\n"
        for depth in 1...60 { block += String(repeating: "  ", count: depth) + "k\(depth):\n" }
        #expect(Self.error(block)?.code == .tooLarge)
    }

    @Test func aliasBombsAreRefused() {
        var yaml =
            Self.minimal + "reference_sets:\n  a: &a [\"x\", \"x\", \"x\", \"x\", \"x\", \"x\", \"x\", \"x\", \"x\"]\n"
        yaml += "  b: *a\n"
        let e = Self.error(yaml)
        #expect(e != nil)
    }

    @Test func randomGarbageNeverTraps() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("abc:-[]{}\"'#&*!|>\n  \t0123@.".utf8)
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0..<200, using: &rng)).map { _ in
                alphabet[Int.random(in: 0..<alphabet.count, using: &rng)]
            }
            _ = Self.error(String(decoding: bytes, as: UTF8.self))
        }
    }

    func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-policy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
