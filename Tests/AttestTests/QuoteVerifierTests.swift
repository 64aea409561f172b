import Foundation
import Testing

@testable import Attest

/// The GCE vTPM evidence (three quotes, one per bank, nonce 0x9009) and the keylime swtpm quote,
/// verified end to end, and every kind of tampering rejected with a precise reason.
@Suite struct QuoteVerifierTests {
    static let base = "quotes/gce_cos85_nonce9009/gce_cos85_nonce9009"
    static let banks: [(String, TPMAlgorithmID)] = [
        ("quote0_sha1", .sha1), ("quote1_sha256", .sha256), ("quote2_sha384", .sha384),
    ]

    struct Evidence {
        let ak: TPMTPublic
        let attest: [UInt8]
        let signature: [UInt8]
        let pcrs: PCRValues
    }

    static func evidence(_ name: String, bank: TPMAlgorithmID) throws -> Evidence {
        let all = try JSONDecoder().decode(
            [String: [String: String]].self, from: Data(Fixture.bytes("\(base).quote_pcrs.json")))
        let pcrs = try PCRValues(jsonObject: [bank.name: try #require(all[bank.name])])
        return Evidence(
            ak: try TPMTPublic(tpmtPublicBytes: Fixture.bytes("\(base).ak_pub.tpmt_public.bin")),
            attest: try Fixture.bytes("\(base).\(name).attest.bin"),
            signature: try Fixture.bytes("\(base).\(name).sig.bin"), pcrs: pcrs)
    }

    static func verify(_ e: Evidence, nonce: [UInt8] = [0x90, 0x09]) throws -> VerifiedQuote {
        try QuoteVerifier(akPublic: e.ak).verify(attest: e.attest, signature: e.signature, nonce: nonce, pcrs: e.pcrs)
    }

    @Test func allThreeGCEQuotesVerifyAndTheLogReplaysToPCRs0Through9() throws {
        var quotes: [VerifiedQuote] = []
        for (name, bank) in Self.banks {
            let q = try Self.verify(Self.evidence(name, bank: bank))
            #expect(q.selection.selections.map(\.hash) == [bank])
            #expect(q.pcrs.banks[bank]?.count == 24)
            quotes.append(q)
        }
        let log = try UnverifiedEventLog(bytes: Fixture.bytes("\(Self.base).eventlog.bin"))
        for q in quotes {
            let verified = EventLogVerifier.verify(log, against: q)
            #expect(verified.isConsistent, "\(verified.mismatches)")
            #expect(verified.workarounds.isEmpty)
            let bank = try #require(q.selection.selections.first?.hash)
            #expect(Set(verified.matched[bank] ?? []).isSuperset(of: Set(0...9)), "\(verified.matched)")
            #expect(verified.events.allSatisfy { $0.event.type != .noAction })
            #expect(!verified.events.isEmpty)
        }
    }

    @Test func aChangedNonceIsRejected() throws {
        let error = #expect(throws: AttestError.self) {
            try Self.verify(Self.evidence("quote1_sha256", bank: .sha256), nonce: [0x90, 0x0A])
        }
        #expect(error?.code == .nonceMismatch)
        #expect(error?.reason == "quote: the signed nonce 9009 is not the verifier's nonce 900a")
    }

    @Test(arguments: [0, 10, 40, 70, 100])
    func oneFlippedBitInTheAttestBytesIsRejected(_ byte: Int) throws {
        let e = try Self.evidence("quote1_sha256", bank: .sha256)
        var attest = e.attest
        guard byte < attest.count else { return }
        attest[byte] ^= 0x01
        let error = #expect(throws: AttestError.self) {
            try QuoteVerifier(akPublic: e.ak).verify(
                attest: attest, signature: e.signature, nonce: [0x90, 0x09], pcrs: e.pcrs)
        }
        #expect(error?.code == .signatureInvalid)
    }

    @Test func oneFlippedBitInTheSignatureIsRejected() throws {
        let e = try Self.evidence("quote2_sha384", bank: .sha384)
        var sig = e.signature
        sig[sig.count - 1] ^= 0x01
        let error = #expect(throws: AttestError.self) {
            try QuoteVerifier(akPublic: e.ak).verify(
                attest: e.attest, signature: sig, nonce: [0x90, 0x09], pcrs: e.pcrs)
        }
        #expect(error?.code == .signatureInvalid)
    }

    @Test func aChangedPCRValueIsRejected() throws {
        let e = try Self.evidence("quote0_sha1", bank: .sha1)
        var pcrs = e.pcrs
        var v = try #require(pcrs[.sha1, 7])
        v[0] ^= 0x80
        pcrs[.sha1, 7] = v
        let error = #expect(throws: AttestError.self) {
            try QuoteVerifier(akPublic: e.ak).verify(
                attest: e.attest, signature: e.signature, nonce: [0x90, 0x09], pcrs: pcrs)
        }
        #expect(error?.code == .pcrDigestMismatch)
    }

    @Test func missingOrExtraPCRValuesAreRejected() throws {
        let e = try Self.evidence("quote1_sha256", bank: .sha256)
        var fewer = e.pcrs
        fewer[.sha256, 23] = nil
        let error = #expect(throws: AttestError.self) {
            try QuoteVerifier(akPublic: e.ak).verify(
                attest: e.attest, signature: e.signature, nonce: [0x90, 0x09], pcrs: fewer)
        }
        #expect(error?.code == .pcrSelectionMismatch)
        var more = e.pcrs
        more[.sha1, 0] = [UInt8](repeating: 0, count: 20)
        let error2 = #expect(throws: AttestError.self) {
            try QuoteVerifier(akPublic: e.ak).verify(
                attest: e.attest, signature: e.signature, nonce: [0x90, 0x09], pcrs: more)
        }
        #expect(error2?.code == .pcrSelectionMismatch)
        // A selection other than the one asked for.
        let asked = TPMLPCRSelection([TPMSPCRSelection(hash: .sha256, pcrs: 0..<16)])
        let error3 = #expect(throws: AttestError.self) {
            try QuoteVerifier(akPublic: e.ak).verify(
                attest: e.attest, signature: e.signature, nonce: [0x90, 0x09], pcrs: e.pcrs, expectedSelection: asked)
        }
        #expect(error3?.code == .pcrSelectionMismatch)
    }

    @Test func aChangedEventLogIsRejectedNamingThePCRAndEvent() throws {
        let q = try Self.verify(Self.evidence("quote1_sha256", bank: .sha256))
        var bytes = try Fixture.bytes("\(Self.base).eventlog.bin")
        let log = try UnverifiedEventLog(bytes: bytes)
        // Change one byte of the SHA-256 digest of the first PCR 4 event (a boot application).
        let target = try #require(log.events.first { $0.pcrIndex == 4 && $0.type == .efiBootServicesApplication })
        let digestOffset = try #require(Self.digestOffset(in: bytes, event: target, bank: .sha256, log: log))
        bytes[digestOffset] ^= 0xFF
        let tampered = EventLogVerifier.verify(try UnverifiedEventLog(bytes: bytes), against: q)
        #expect(!tampered.isConsistent)
        let mismatch = try #require(tampered.mismatches.first)
        #expect(mismatch.pcr == 4)
        #expect(mismatch.bank == .sha256)
        #expect(mismatch.explanation.contains("altered"))
        // Events of PCR 4 are no longer offered to policy; other PCRs' still are.
        #expect(!tampered.events.contains { $0.event.pcrIndex == 4 })
        #expect(tampered.events.contains { $0.event.pcrIndex == 7 })

        // Dropping the last PCR 4 event: the log now stops short, which is also named.
        let lastPCR4 = try #require(log.events.last { $0.pcrIndex == 4 })
        var truncatedLog = try Fixture.bytes("\(Self.base).eventlog.bin")
        let next = log.events.first { $0.index == lastPCR4.index + 1 }
        truncatedLog.removeSubrange(lastPCR4.offset..<(next?.offset ?? truncatedLog.count))
        let short = EventLogVerifier.verify(try UnverifiedEventLog(bytes: truncatedLog), against: q)
        #expect(short.mismatches.map(\.pcr) == [4])
    }

    @Test func anAppendedEventIsNamedAsNotMeasured() throws {
        let q = try Self.verify(Self.evidence("quote1_sha256", bank: .sha256))
        let bytes = try Fixture.bytes("\(Self.base).eventlog.bin")
        let log = try UnverifiedEventLog(bytes: bytes)
        // A crypto-agile EV_IPL event in PCR 9 with made-up digests, appended: the TPM never saw it.
        var extra: [UInt8] = []
        func le32(_ v: UInt32) { for s in [0, 8, 16, 24] { extra.append(UInt8(truncatingIfNeeded: v >> UInt32(s))) } }
        le32(9)
        le32(0x0D)
        le32(UInt32(log.specID?.algorithms.count ?? 0))
        for alg in log.specID?.algorithms ?? [] {
            extra.append(UInt8(alg.id.rawValue & 0xFF))
            extra.append(UInt8(alg.id.rawValue >> 8))
            extra.append(contentsOf: [UInt8](repeating: 0xAB, count: alg.digestSize))
        }
        le32(4)
        extra.append(contentsOf: Array("evil".utf8))
        let appended = EventLogVerifier.verify(try UnverifiedEventLog(bytes: bytes + extra), against: q)
        let mismatch = try #require(appended.mismatches.first { $0.pcr == 9 })
        #expect(mismatch.eventIndex == log.events.count)
        #expect(mismatch.explanation.contains("were not measured"))
    }

    @Test func keylimeSwtpmQuoteVerifiesWithItsASCIINonce() throws {
        // Keylime ships only the AK's PEM: a bare key, whose TPM attributes cannot be checked.
        let ak = try AKPublic(bareSigningKeyPEM: Fixture.text("quotes/keylime_checkquote/ak.pem"))
        let (selection, values) = try TPM2ToolsPCRFile.parse(
            Fixture.bytes("quotes/keylime_checkquote/pcrs.tpm2tools.bin"))
        let q = try QuoteVerifier(ak: ak).verify(
            attest: Fixture.bytes("quotes/keylime_checkquote/quote.attest.bin"),
            signature: Fixture.bytes("quotes/keylime_checkquote/quote.sig.bin"),
            nonce: Array("Ai5M5SjYjnkyv4P7itH1".utf8), pcrs: values, expectedSelection: selection)
        #expect(q.pcrs == values)
    }

    @Test func clockFindingsCompareWithThePreviousQuote() throws {
        let q = try Self.verify(Self.evidence("quote1_sha256", bank: .sha256))
        #expect(q.clockFindings.isEmpty)
        func attest(reset: UInt32, restart: UInt32, clock: UInt64, fw: UInt64) throws -> VerifiedQuote {
            var bytes = q.attest.rawBytes
            // Patch TPMS_CLOCK_INFO in place: after magic(4) type(2) qualifiedSigner(2+n) extraData(2+m).
            let signerLength = Int(bytes[6]) << 8 | Int(bytes[7])
            var at = 8 + signerLength
            let extraLength = Int(bytes[at]) << 8 | Int(bytes[at + 1])
            at += 2 + extraLength
            var w = ByteWriter()
            w.append(clock)
            w.append(reset)
            w.append(restart)
            w.append(UInt8(1))
            w.append(fw)
            bytes.replaceSubrange(at..<(at + 25), with: w.bytes)
            let decoded = try TPMSAttest(bytes: bytes)
            return VerifiedQuote(uncheckedAttest: decoded, selection: q.selection, pcrs: q.pcrs)
        }
        let c = q.clockInfo
        let later = try attest(reset: c.resetCount, restart: c.restartCount, clock: c.clock + 1, fw: q.firmwareVersion)
        #expect(QuoteVerifier.clockFindings(later.attest, previous: PreviousQuote(q)).isEmpty)
        let rebooted = try attest(reset: c.resetCount + 1, restart: 0, clock: 5, fw: q.firmwareVersion)
        #expect(
            QuoteVerifier.clockFindings(rebooted.attest, previous: PreviousQuote(q)) == [
                .rebooted(from: c.resetCount, to: c.resetCount + 1)
            ])
        let older = try attest(reset: c.resetCount, restart: c.restartCount, clock: c.clock - 1, fw: q.firmwareVersion)
        #expect(
            QuoteVerifier.clockFindings(older.attest, previous: PreviousQuote(q)) == [
                .clockWentBackwards(from: c.clock, to: c.clock - 1)
            ])
        let cleared = try attest(reset: 0, restart: 0, clock: c.clock, fw: q.firmwareVersion + 1)
        #expect(
            QuoteVerifier.clockFindings(cleared.attest, previous: PreviousQuote(q)) == [
                .countersWentBackwards, .firmwareChanged(from: q.firmwareVersion, to: q.firmwareVersion + 1),
            ])
    }

    /// Byte offset of `bank`'s digest inside a crypto-agile event.
    static func digestOffset(in bytes: [UInt8], event: EventLogEvent, bank: TPMAlgorithmID, log: UnverifiedEventLog)
        -> Int?
    {
        var at = event.offset + 12
        for alg in log.specID?.algorithms ?? [] {
            let id = UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8
            if id == bank.rawValue { return at + 2 }
            at += 2 + alg.digestSize
        }
        return nil
    }
}

/// Named firmware workarounds are applied only after a plain replay fails, and are reported.
@Suite struct EventLogWorkaroundTests {
    @Test func aLogMissingTheExitBootServicesEventsMatchesWithTheNamedWorkaround() throws {
        // A TPM that saw the EBS invocation and success in PCR 5 although the firmware did not log them.
        let log = try UnverifiedEventLog(bytes: Fixture.bytes("eventlogs/ebs-missing-sha1.bin"))
        let replay = EventLogReplay(log)
        var pcrs = replay.values
        var pcr5 = try #require(pcrs[.sha1, 5])
        for action in ["Exit Boot Services Invocation", "Exit Boot Services Returned with Success"] {
            pcr5 = try TPMDigest.extend(.sha1, pcr5, try TPMDigest.hash(.sha1, Array(action.utf8)))
        }
        pcrs[.sha1, 5] = pcr5
        let selection = TPMLPCRSelection([TPMSPCRSelection(hash: .sha1, pcrs: pcrs.banks[.sha1]?.keys.sorted() ?? [])])
        let attest = try TPMSAttest(
            bytes: Fixture.bytes("quotes/gce_cos85_nonce9009/gce_cos85_nonce9009.quote0_sha1.attest.bin"))
        let quote = VerifiedQuote(uncheckedAttest: attest, selection: selection, pcrs: pcrs)
        let verified = EventLogVerifier.verify(log, against: quote)
        #expect(verified.isConsistent)
        #expect(verified.workarounds.map(\.name) == ["missing-ebs-success"])
        // The synthetic events are reported as such, and a clean log needs no workaround.
        #expect(verified.events.contains { $0.event.offset == -1 && $0.event.pcrIndex == 5 })
        let clean = EventLogVerifier.verify(
            log, against: VerifiedQuote(uncheckedAttest: attest, selection: selection, pcrs: replay.values))
        #expect(clean.workarounds.isEmpty && clean.isConsistent)
        // A mismatch elsewhere is never "fixed" by a PCR 5 workaround.
        var other = pcrs
        other[.sha1, 4] = [UInt8](repeating: 4, count: 20)
        let bad = EventLogVerifier.verify(
            log, against: VerifiedQuote(uncheckedAttest: attest, selection: selection, pcrs: other))
        #expect(!bad.isConsistent && bad.workarounds.isEmpty)
    }
}
