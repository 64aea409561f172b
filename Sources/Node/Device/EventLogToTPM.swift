public import Attest
public import AttestTPM

/// `vigil tpm replay-log`: extends a **software** TPM's PCRs with a real machine's event log, so tests and
/// demos get quotes consistent with that machine's boot. Refuses real TPM devices, PCRs that are not at
/// their reset values, and H-CRTM logs (the TPM hashes H-CRTM data itself; the log holds only digests).
/// A StartupLocality log is reproduced on swtpm by re-initialising the simulator and issuing TPM2_Startup
/// from that locality, as the platform did.
public enum EventLogToTPM {
    public struct Report: Sendable {
        public let extendedEvents: Int
        public let banks: [TPMAlgorithmID]
        /// Active TPM banks the log has no digests for (left untouched).
        public let banksNotInLog: [TPMAlgorithmID]
    }

    public static func replay(_ log: UnverifiedEventLog, into tpm: TPM) async throws(TPMError) -> Report {
        guard tpm.tcti.name != "device" else {
            throw TPMError(
                code: .invalidArgument,
                reason:
                    "replay-log is for software TPMs only (swtpm, mssim): extending a real TPM's PCRs with another machine's log would corrupt its attestation until reboot"
            )
        }
        let replay = EventLogReplay(log)
        if let locality = replay.startupLocality, locality != 0 {
            guard let control = SwtpmControl(tpm.tcti), locality <= 3 else {
                throw TPMError(
                    code: .invalidArgument,
                    reason:
                        "the log starts PCR 0 at locality \(locality) (StartupLocality); only a swtpm simulator can be restarted from locality 0–3"
                )
            }
            // A fresh power-on: TPM_Init, then TPM2_Startup from the log's locality sets PCR 0 to 00…0N.
            try control.initialize()
            try control.setLocality(locality)
            do {
                try await tpm.startup(clear: true)
            } catch {
                try? control.setLocality(0)
                throw error
            }
            try control.setLocality(0)
        }
        if replay.hcrtm {
            throw TPMError(
                code: .invalidArgument,
                reason:
                    "the log starts PCR 0 with an H-CRTM measurement (locality 4), which a simulator cannot reproduce")
        }
        let active = try await tpm.activeBanks()
        let banks = active.filter { log.banks.contains($0) }
        guard !banks.isEmpty else {
            throw TPMError(
                code: .bankNotActive,
                reason:
                    "the log's banks (\(log.banks.map(\.name).joined(separator: ", "))) are not active on this TPM (\(active.map(\.name).joined(separator: ", ")))"
            )
        }
        let touched = Set(log.events.filter(\.isExtended).compactMap(\.pcr)).sorted()
        let selection = TPMLPCRSelection(banks.map { TPMSPCRSelection(hash: $0, pcrs: touched) })
        let (current, _) = try await tpm.pcrRead(selection)
        for bank in banks {
            for pcr in touched {
                // The start values the verifier expects (one source: PCRStartValue).
                let expected = replay.start.value(pcr: pcr, size: bank.digestSize ?? 0)
                guard let v = current[bank, pcr], v == expected else {
                    throw TPMError(
                        code: .invalidArgument,
                        reason:
                            "\(bank.name) PCR \(pcr) is not at its reset value: restart the simulator before replaying a log"
                    )
                }
            }
        }
        var extended = 0
        for event in log.events where event.isExtended {
            guard let pcr = event.pcr else { continue }
            var digests: [TPMAlgorithmID: [UInt8]] = [:]
            for bank in banks {
                if let d = event.digest(bank) { digests[bank] = d }
            }
            guard !digests.isEmpty else { continue }
            try await tpm.pcrExtend(pcr, digests: digests)
            extended += 1
        }
        return Report(extendedEvents: extended, banks: banks, banksNotInLog: active.filter { !log.banks.contains($0) })
    }
}
