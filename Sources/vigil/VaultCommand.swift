import ArgumentParser
import Attest
import AttestTPM
import Foundation
import Vault

/// `vigil vault …`: directories encrypted with fscrypt under a key sealed in the TPM to PCR values.
struct VaultCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vault", abstract: "TPM-sealed vaults (fscrypt directories).",
        subcommands: [Create.self, Unlock.self, Lock.self, Status.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encrypt an empty directory under a new key sealed to the TPM's PCRs (left unlocked).")
        @Option(help: "Backend (fscrypt; luks2 follows).") var backend = "fscrypt"
        @Option(help: "SHA-256 PCRs to seal to (default 0-4,6-14).") var pcrs: String?
        @Argument(help: "The vault directory (empty, on ext4 with the encrypt feature).") var path: String
        @OptionGroup var tpmOptions: TPMOptions

        func run() async throws {
            try await reportingErrors {
                guard backend == "fscrypt" else { throw ValidationError("--backend: only fscrypt in this build") }
                var list = PCRSealedKey.defaultPCRs
                if let pcrs {
                    guard let parsed = TPMLPCRSelection(parsingSpec: "sha256:" + pcrs)?.selections.first?.pcrs else {
                        throw ValidationError("--pcrs: a list like 0,1,2,7 or 0-7")
                    }
                    list = parsed
                }
                let tpm = try await tpmOptions.open()
                let m = try await FSCryptVault(path: path).create(tpm: tpm, pcrs: list)
                print(
                    "vault \(path): fscrypt v2 (AES-256-XTS/CTS), key \(m.keyIdentifier) sealed to sha256:\(m.sealing.pcrs.map(String.init).joined(separator: ",")); unlocked"
                )
            }
        }
    }

    struct Unlock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Unseal the key (the PCRs must be those at seal time) and unlock the directory.")
        @Argument(help: "The vault directory.") var path: String
        @OptionGroup var tpmOptions: TPMOptions

        func run() async throws {
            try await reportingErrors {
                let tpm = try await tpmOptions.open()
                try await FSCryptVault(path: path).unlock(tpm: tpm)
                print("vault \(path): unlocked")
            }
        }
    }

    struct Lock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove the key: the files become unreadable.")
        @Argument(help: "The vault directory.") var path: String

        func run() async throws {
            try await reportingErrors {
                let done = try FSCryptVault(path: path).lock()
                print(done ? "vault \(path): locked" : "vault \(path): locking (files still open keep it until closed)")
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Backend, state, sealing policy, and the sealed PCRs that differ now.")
        @Argument(help: "The vault directory.") var path: String
        @OptionGroup var tpmOptions: TPMOptions
        @Flag(help: "JSON.") var json = false

        func run() async throws {
            try await reportingErrors {
                let tpm = try await tpmOptions.open()
                let s = try await FSCryptVault(path: path).status(tpm: tpm)
                if json {
                    try printAPIJSON(s)
                } else {
                    print("vault \(path): \(s.backend), \(s.state), sealed to \(s.sealedTo)")
                    print(
                        s.changedPCRs.isEmpty
                            ? "PCRs as at seal time: it unlocks offline"
                            : "PCRs changed since sealing: \(s.changedPCRs.map(String.init).joined(separator: ", ")) (it will not unlock offline)"
                    )
                }
            }
        }
    }
}
