import Attest
import Foundation
import Testing

/// Hostile and quirky event logs: truncation at every byte, oversized sizes, undeclared and unknown
/// algorithms, PCR index 0xFFFFFFFF, trailing bytes. Every failure is a typed error; nothing traps.
@Suite struct EventLogHostileTests {
    // MARK: Builders (little-endian, as firmware writes the log)

    static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    static func le16(_ v: UInt16) -> [UInt8] { [UInt8(truncatingIfNeeded: v), UInt8(truncatingIfNeeded: v >> 8)] }

    /// The Spec ID header event (SHA-1 format): PCR 0, EV_NO_ACTION, zero digest, TCG_EfiSpecIDEvent.
    static func specID(_ algorithms: [(UInt16, UInt16)], count: UInt32? = nil) -> [UInt8] {
        var data = Array("Spec ID Event03".utf8) + [0]
        data += le32(0)  // platformClass
        data += [0, 2, 0, 2]  // specVersionMinor, Major, errata, uintnSize
        data += le32(count ?? UInt32(algorithms.count))
        for (id, size) in algorithms { data += le16(id) + le16(size) }
        data += [0]  // vendorInfoSize
        return le32(0) + le32(3) + [UInt8](repeating: 0, count: 20) + le32(UInt32(data.count)) + data
    }

    /// A crypto-agile event with the given digests.
    static func event(pcr: UInt32, type: UInt32, digests: [(UInt16, [UInt8])], data: [UInt8]) -> [UInt8] {
        var out = le32(pcr) + le32(type) + le32(UInt32(digests.count))
        for (id, d) in digests { out += le16(id) + d }
        return out + le32(UInt32(data.count)) + data
    }

    static let sha256Header = specID([(0x000B, 32)])
    static func sha256Event(pcr: UInt32, _ fill: UInt8, type: UInt32 = 0x0D) -> [UInt8] {
        event(pcr: pcr, type: type, digests: [(0x000B, [UInt8](repeating: fill, count: 32))], data: Array("x".utf8))
    }

    // MARK: Truncation

    /// Every prefix of a log either parses as the events it fully contains, or fails with .truncated.
    static func checkPrefixes(_ bytes: [UInt8], at offsets: some Sequence<Int>, name: String) throws {
        let full = try UnverifiedEventLog(bytes: bytes)
        let boundaries = Dictionary(
            uniqueKeysWithValues: full.events.enumerated().map { ($0.element.offset, $0.offset) })
        for n in offsets where n < bytes.count {
            do {
                let log = try UnverifiedEventLog(bytes: Array(bytes.prefix(n)))
                // Only a prefix ending exactly at an event boundary is itself a log.
                #expect(boundaries[n] == log.events.count, "\(name): prefix \(n) parsed as \(log.events.count) events")
            } catch {
                #expect(error.code == .truncated, "\(name): prefix \(n): \(error)")
            }
        }
    }

    @Test(arguments: EventLogReplayTests.logs)
    func everyPrefixOfAFixtureLogIsEitherAShorterLogOrTruncated(_ name: String) throws {
        let bytes = try Fixture.bytes("eventlogs/\(name)")
        if bytes.count <= 17_000 {
            try Self.checkPrefixes(bytes, at: 0..<bytes.count, name: name)
        } else {
            // Large logs: every byte of the first and last events, every event boundary ±3, and a stride of
            // 61 through the rest (the fuzzer covers the space in between; see Fuzz/run.sh).
            let log = try UnverifiedEventLog(bytes: bytes)
            var offsets = Set(0..<min(bytes.count, 600))
            offsets.formUnion(max(0, (log.events.last?.offset ?? 0) - 8)..<bytes.count)
            for e in log.events { offsets.formUnion(max(0, e.offset - 3)...(e.offset + 3)) }
            offsets.formUnion(stride(from: 0, to: bytes.count, by: 61))
            try Self.checkPrefixes(bytes, at: offsets.sorted(), name: name)
        }
    }

    // MARK: Sizes and algorithms

    @Test func anEventSizeBeyondTheLogIsTruncatedAndAHugeOneIsRefusedBeforeAllocating() throws {
        var bytes = Self.sha256Header + Self.sha256Event(pcr: 4, 1)
        let sizeAt = bytes.count - 5  // eventSize of the last event (data is 1 byte)
        bytes.replaceSubrange(sizeAt..<(sizeAt + 4), with: Self.le32(1000))
        #expect((#expect(throws: AttestError.self) { try UnverifiedEventLog(bytes: bytes) })?.code == .truncated)
        bytes.replaceSubrange(sizeAt..<(sizeAt + 4), with: Self.le32(0xFFFF_FFFF))
        let huge = #expect(throws: AttestError.self) { try UnverifiedEventLog(bytes: bytes) }
        #expect(huge?.code == .sizeLimitExceeded)
        #expect(huge?.reason.contains("event 1: eventSize") == true)
    }

    @Test func specIDEventsWithBadAlgorithmListsAreRejected() throws {
        for (header, why) in [
            (Self.specID([]), "no algorithms"),
            (Self.specID([(0x000B, 32)], count: 1000), "1000 algorithms"),
            (Self.specID([(0x000B, 0)]), "zero-length digests"),
            (Self.specID([(0x000B, 20)]), "SHA-256 declared with 20 bytes"),
            (Self.specID([(0x000B, 32), (0x000B, 32)]), "SHA-256 twice"),
            (Self.specID([(0x0099, 65)]), "a 65-byte digest"),
        ] {
            #expect(throws: AttestError.self, "\(why)") {
                try UnverifiedEventLog(bytes: header + Self.sha256Event(pcr: 0, 1))
            }
        }
    }

    @Test func undeclaredDigestAlgorithmsAndTooManyDigestsAreRejected() throws {
        let undeclared = Self.event(pcr: 4, type: 0x0D, digests: [(0x000C, [UInt8](repeating: 1, count: 48))], data: [])
        let e = #expect(throws: AttestError.self) { try UnverifiedEventLog(bytes: Self.sha256Header + undeclared) }
        #expect(e?.code == .unknownAlgorithm)
        #expect(e?.reason.contains("not declared by the Spec ID event") == true)
        let twice = Self.event(
            pcr: 4, type: 0x0D,
            digests: [(0x000B, [UInt8](repeating: 1, count: 32)), (0x000B, [UInt8](repeating: 2, count: 32))], data: [])
        #expect(
            (#expect(throws: AttestError.self) { try UnverifiedEventLog(bytes: Self.sha256Header + twice) })?.code
                == .sizeLimitExceeded)
    }

    @Test func anUnknownAlgorithmIsCarriedByItsDeclaredSizeAndReportedAsNotReplayable() throws {
        let header = Self.specID([(0x000B, 32), (0x0012, 32), (0x7777, 24)])
        let e = Self.event(
            pcr: 2, type: 0x0D,
            digests: [
                (0x000B, [UInt8](repeating: 1, count: 32)), (0x0012, [UInt8](repeating: 2, count: 32)),
                (0x7777, [UInt8](repeating: 3, count: 24)),
            ], data: Array("hello".utf8))
        let log = try UnverifiedEventLog(bytes: header + e)
        #expect(log.banks == [.sha256, .sm3_256, TPMAlgorithmID(0x7777)])
        #expect(log.events[1].digest(TPMAlgorithmID(0x7777)) == [UInt8](repeating: 3, count: 24))
        let replay = EventLogReplay(log)
        #expect(replay.values[.sha256, 2] != nil)
        // SM3-256 is replayed (SM3.swift): PCR 2 := SM3(zeros || digest).
        #expect(replay.uncomputableBanks.keys.sorted() == [TPMAlgorithmID(0x7777)])
        #expect(
            replay.values[.sm3_256, 2] == SM3.hash([UInt8](repeating: 0, count: 32) + [UInt8](repeating: 2, count: 32)))
    }

    @Test func pcrIndex0xFFFFFFFFIsParsedButNeverExtended() throws {
        let withOdd =
            Self.sha256Header + Self.sha256Event(pcr: 4, 1) + Self.sha256Event(pcr: 0xFFFF_FFFF, 9)
            + Self.sha256Event(pcr: 4, 2)
        let without = Self.sha256Header + Self.sha256Event(pcr: 4, 1) + Self.sha256Event(pcr: 4, 2)
        let a = EventLogReplay(try UnverifiedEventLog(bytes: withOdd)),
            b = EventLogReplay(try UnverifiedEventLog(bytes: without))
        #expect(a.values == b.values)
        #expect(a.values.banks[.sha256]?.keys.sorted() == [4])
        #expect(try UnverifiedEventLog(bytes: withOdd).events[2].pcrIndex == 0xFFFF_FFFF)
    }

    @Test func trailingBytesAreTruncatedEventsButZeroPaddingIsAccepted() throws {
        let log = Self.sha256Header + Self.sha256Event(pcr: 4, 1)
        #expect(try UnverifiedEventLog(bytes: log + [UInt8](repeating: 0, count: 64)).trailingPadding == 64)
        #expect(
            (#expect(throws: AttestError.self) { try UnverifiedEventLog(bytes: log + [1, 2, 3]) })?.code == .truncated)
    }

    @Test func startupLocalityAndHCRTMSetPCR0sStartValue() throws {
        let locality = Self.event(
            pcr: 0, type: 3, digests: [(0x000B, [UInt8](repeating: 0, count: 32))],
            data: Array("StartupLocality".utf8) + [0, 3])
        let withLocality = EventLogReplay(
            try UnverifiedEventLog(bytes: Self.sha256Header + locality + Self.sha256Event(pcr: 0, 7)))
        var start = [UInt8](repeating: 0, count: 32)
        start[31] = 3
        #expect(withLocality.startupLocality == 3)
        #expect(
            withLocality.values[.sha256, 0] == (try TPMDigest.hash(.sha256, start + [UInt8](repeating: 7, count: 32))))
        let hcrtm = EventLogReplay(
            try UnverifiedEventLog(bytes: Self.sha256Header + Self.sha256Event(pcr: 0, 5, type: 0x8000_0010)))
        start[31] = 4
        #expect(hcrtm.hcrtm)
        #expect(hcrtm.values[.sha256, 0] == (try TPMDigest.hash(.sha256, start + [UInt8](repeating: 5, count: 32))))
    }

    @Test func aShortNoActionFirstEventMeansSHA1Format() throws {
        let log = try UnverifiedEventLog(bytes: Fixture.bytes("eventlogs/short-no-action.bin"))
        #expect(log.format == .sha1)
        #expect(log.specID == nil)
    }

    @Test func randomMutationsOfARealLogNeverTrap() throws {
        let base = try Fixture.bytes("eventlogs/fedora37-sdboot-sha256.bin")
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<3000 {
            var b = base
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            if let log = try? UnverifiedEventLog(bytes: b) {
                _ = EventLogReplay(log)
                _ = BootFacts(events: log.events)
            }
        }
    }
}
