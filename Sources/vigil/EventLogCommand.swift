import ArgumentParser
import Attest
import Foundation

struct EventLogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eventlog",
        abstract: "Inspect and replay TCG PC Client event logs (binary_bios_measurements), in-process.",
        subcommands: [Show.self, Replay.self])

    static func load(_ path: String) throws -> UnverifiedEventLog {
        let bytes = try readInput(path, limit: UnverifiedEventLog.maxLogSize)
        do {
            return try UnverifiedEventLog(bytes: bytes)
        } catch {
            throw AttestError(code: error.code, reason: "\(path): \(error.reason)")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every event: index, PCR, type, digests per bank, decoded data.")
        @Argument(help: "The event log file.") var file: String
        @Flag(help: "Print as JSON.") var json = false

        struct JSONEvent: Encodable {
            let index: Int
            let offset: Int
            let pcr: UInt32
            let type: String
            let type_value: UInt32
            let digests: [String: String]
            let data: String
            let data_hex: String
        }

        func run() async throws {
            try await reportingErrors {
                let log = try EventLogCommand.load(file)
                if json {
                    try printJSON(
                        log.events.map { e in
                            JSONEvent(
                                index: e.index, offset: e.offset, pcr: e.pcrIndex, type: e.type.description,
                                type_value: e.type.rawValue,
                                digests: Dictionary(
                                    uniqueKeysWithValues: e.digests.map { ($0.algorithm.name, Hex.encode($0.value)) }),
                                data: DecodedEventData(e).summary, data_hex: Hex.encode(e.data))
                        })
                    return
                }
                print(
                    "\(file): \(log.format.rawValue) log, \(log.events.count) events, banks \(log.banks.map(\.name).joined(separator: ", "))"
                )
                for e in log.events {
                    let pcr = e.pcrIndex < 24 ? String(e.pcrIndex) : "0x\(String(e.pcrIndex, radix: 16))"
                    print("#\(e.index) PCR \(pcr) \(e.type)")
                    for d in e.digests { print("    \(d.algorithm.name): \(Hex.encode(d.value))") }
                    print("    \(DecodedEventData(e).summary)")
                }
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Replay the log into PCR values per bank.")
        @Argument(help: "The event log file.") var file: String
        @Flag(help: "Print as JSON: {\"pcrs\": {\"sha256\": {\"0\": \"hex\", …}}}.") var json = false

        func run() async throws {
            try await reportingErrors {
                let replay = EventLogReplay(try EventLogCommand.load(file))
                if json {
                    try printJSON(replay.jsonObject)
                    return
                }
                for (bank, values) in replay.values.banks.sorted(by: { $0.key < $1.key }) {
                    print("\(bank.name):")
                    for (pcr, v) in values.sorted(by: { $0.key < $1.key }) {
                        print("  \(pcr < 10 ? " " : "")\(pcr): \(Hex.encode(v))")
                    }
                }
                for (bank, why) in replay.uncomputableBanks { print("\(bank.name): not replayed: \(why)") }
            }
        }
    }
}
