import Attest
import Crypto
import Foundation

/// What one attestation showed of the device's boot, kept with its verdict (table `boot_records`, shared by every
/// attestation of the same boot, under ``key(eventLog:pcrs:)``) so that the dashboard can decode the events a failed rule names and compare a
/// failed boot with the last one that passed.
///
/// Nothing here is trusted for a decision: the verdict was made from ``VerifiedEvidence``. The record keeps, for
/// each event, how far the quote proves it (``Proof``): only an event whose PCR replayed to the signed value is
/// attested at all, and of those only a `bound` event's data is what its digest measured; the rest is the
/// device's description, and the dashboard says so next to it.
struct BootRecord: Codable, Sendable, Equatable {
    /// How far the quote proves one event (TCG PC Client PFP §10.4.4 for what a digest covers).
    enum Proof: String, Codable, Sendable {
        /// Its PCR replayed to the quoted value, and its data hashes to its digest.
        case bound
        /// Its PCR replayed, and its digest covers other data (an image, a file): the data is a description.
        case described
        /// Its PCR replayed, but its data does not hash to its digest: edited under an unchanged digest.
        case unbound
        /// It extends no PCR (EV_NO_ACTION), or its PCR did not replay to the quoted value (or was not quoted):
        /// nothing about the event is attested.
        case unproven
    }

    /// One event of the log, decoded.
    struct Event: Codable, Sendable, Equatable {
        /// Its index in the log (what a verdict's `event` names).
        let index: Int
        /// The PCR it extended (nil for events that extend none, such as EV_NO_ACTION).
        let pcr: Int?
        /// Its (claimed) TCG type, by name ("EV_IPL").
        let type: String
        /// Its digest in ``BootRecord/bank``, hex ("" when the event has none in that bank).
        let digest: String
        /// How far the quote proves it.
        let proof: Proof
        /// Its data decoded (``DecodedEventData/summary``), at most ``maximumText`` characters.
        let text: String
    }

    /// A boot application the firmware loaded (EV_EFI_BOOT_SERVICES_APPLICATION), from a replayed PCR.
    struct BootApplication: Codable, Sendable, Equatable {
        let path: String
        let digest: String
    }

    /// The record's layout; a stored record of another version is not shown.
    static let currentVersion = 1
    /// The most events kept (a log with more keeps its first ones and says so in ``truncated``).
    static let maximumEvents = 4096
    /// The longest decoded text kept per event, kernel command line or path.
    static let maximumText = 1024

    let version: Int
    /// The bank the event digests are given in (SHA-256 when the log's SHA-256 bank replayed).
    let bank: String
    /// The PCR values the quote signed, by bank and index (hex).
    let pcrs: [String: [String: String]]
    /// The log's events in order (empty when the device sent no log).
    let events: [Event]
    /// Events left out beyond ``maximumEvents``.
    let truncated: Int
    /// SecureBoot as the (replayed, bound) variable event says; nil when the log does not say.
    let secureBoot: Bool?
    /// Boot applications in load order.
    let bootApplications: [BootApplication]
    /// Kernel command lines (PCR 8 or 12, bound to their digests).
    let kernelCommandLines: [String]

    /// The record of `evidence`: its quoted PCRs and each event with how far the quote proves it.
    init(_ evidence: VerifiedEvidence) {
        version = Self.currentVersion
        pcrs = evidence.quote.pcrs.jsonObject
        let log = evidence.eventLog
        let matched = log?.matched ?? [:]
        let chosen: TPMAlgorithmID =
            matched[.sha256]?.isEmpty == false
            ? .sha256
            : matched.keys.sorted { $0.rawValue < $1.rawValue }.first
                ?? .sha256
        bank = chosen.name
        let replayed = Set(matched[chosen] ?? [])
        // The attested events with how their data is bound; every other logged event is shown as unproven.
        var binding: [Int: EventDataBinding] = [:]
        for e in log?.events ?? [] { binding[e.event.index] = e.binding }
        let all = log?.loggedEvents ?? []
        events = all.prefix(Self.maximumEvents).map { e in
            let proof: Proof
            if let pcr = e.pcr, replayed.contains(pcr), let bound = binding[e.index] {
                switch bound {
                case .bound: proof = .bound
                case .digestOfOtherData: proof = .described
                case .unbound: proof = .unbound
                }
            } else {
                proof = .unproven
            }
            return Event(
                index: e.index, pcr: e.isExtended ? e.pcr : nil, type: e.type.description,
                digest: e.digestBytes(chosen).map { Hex.encode(Array($0)) } ?? "", proof: proof,
                text: Self.clip(DecodedEventData(e).summary))
        }
        truncated = max(0, all.count - Self.maximumEvents)
        let facts = evidence.facts[chosen]
        secureBoot = facts?.secureBoot
        bootApplications = (facts?.bootApplications ?? []).prefix(256).map {
            BootApplication(path: Self.clip($0.devicePath), digest: $0.digest ?? "")
        }
        kernelCommandLines = (facts?.kernelCommandLines ?? []).prefix(64).map(Self.clip)
    }

    static func clip(_ text: String) -> String {
        text.count <= maximumText ? text : String(text.prefix(maximumText)) + "…"
    }

    /// The record as stored: JSON with sorted keys.
    func encoded() throws(ControllerError) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do { return String(decoding: try encoder.encode(self), as: UTF8.self) } catch {
            throw .internalFailure("boot record: \(error)")
        }
    }

    /// The key a record is stored under: the SHA-256 of everything it is computed from — the event log exactly as
    /// the bundle carried it and the PCR values the quote signed — and of the record's layout version. Two
    /// attestations of the same boot share one record, and building the record (decoding every event) is done only
    /// for a boot not stored yet; a device cannot make two different boots share a key short of a SHA-256 collision.
    static func key(eventLog: String?, pcrs: PCRValues) -> String {
        var hash = SHA256()
        hash.update(data: Array("vigil-boot-record-v\(currentVersion)\u{0}".utf8))
        for (bank, values) in pcrs.jsonObject.sorted(by: { $0.key < $1.key }) {
            for (index, value) in values.sorted(by: { (Int($0.key) ?? 0) < (Int($1.key) ?? 0) }) {
                hash.update(data: Array("\(bank):\(index)=\(value);".utf8))
            }
        }
        hash.update(data: Array("\u{0}log:".utf8))
        hash.update(data: Array((eventLog ?? "").utf8))
        return Hex.encode(hash.finalize())
    }

    /// A stored record, nil when it is not one this controller can show (another version, damaged).
    static func decode(_ json: String) -> BootRecord? {
        guard json.utf8.count <= 8 * 1024 * 1024,
            let record = try? JSONDecoder().decode(BootRecord.self, from: Data(json.utf8)),
            record.version == currentVersion
        else { return nil }
        return record
    }

    /// The event with log index `index`.
    func event(_ index: Int) -> Event? {
        // Events are stored in log order with their indices; the index is usually the position.
        if events.indices.contains(index), events[index].index == index { return events[index] }
        return events.first { $0.index == index }
    }
}
