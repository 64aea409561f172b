/// How a boot differs from the last one that passed (the device page's "what changed"): which quoted PCRs changed,
/// and which events of the log were added, removed or altered, in log order.
///
/// Events are compared by PCR, type, digest and decoded data; a removal and an addition of the same PCR and type
/// are paired as one altered event (a new kernel, an edited command line), the rest stay added or removed.
struct BootDiff: Sendable, Equatable {
    /// One PCR whose quoted value differs (or that only one of the quotes covered).
    struct PCRChange: Sendable, Equatable {
        let bank: String, pcr: Int
        /// nil: not quoted then (or now).
        let before: String?, after: String?
    }

    /// One event-level difference.
    struct EventChange: Sendable, Equatable {
        enum Kind: String, Sendable { case added, removed, altered }
        let kind: Kind
        /// The event in the last passing boot (removed, altered).
        let before: BootRecord.Event?
        /// The event in this boot (added, altered).
        let after: BootRecord.Event?
    }

    /// The most event changes listed (a different OS image changes everything; the count says how many more).
    static let maximumEventChanges = 200

    let pcrs: [PCRChange]
    let events: [EventChange]
    /// Changes beyond ``maximumEventChanges``.
    let moreEvents: Int

    init(from before: BootRecord, to after: BootRecord) {
        var pcrs: [PCRChange] = []
        for bank in Set(before.pcrs.keys).union(after.pcrs.keys).sorted() {
            let a = before.pcrs[bank] ?? [:]
            let b = after.pcrs[bank] ?? [:]
            let indices = Set(a.keys).union(b.keys).compactMap(Int.init).sorted()
            for i in indices where a[String(i)] != b[String(i)] {
                pcrs.append(PCRChange(bank: bank, pcr: i, before: a[String(i)], after: b[String(i)]))
            }
        }
        self.pcrs = pcrs

        // Events compared without their index (an event inserted early shifts every later index).
        struct Key: Hashable { let pcr: Int?, type: String, digest: String, text: String }
        func key(_ e: BootRecord.Event) -> Key { Key(pcr: e.pcr, type: e.type, digest: e.digest, text: e.text) }
        let difference = after.events.map(key).difference(from: before.events.map(key))
        var removed: [BootRecord.Event] = []
        var added: [BootRecord.Event] = []
        for change in difference {
            switch change {
            case .remove(let offset, _, _): removed.append(before.events[offset])
            case .insert(let offset, _, _): added.append(after.events[offset])
            }
        }
        // CollectionDifference lists removals from the last offset down: pair them in log order.
        removed.sort { $0.index < $1.index }
        var changes: [(position: Int, change: EventChange)] = []
        var unpaired = added
        for old in removed {
            if let i = unpaired.firstIndex(where: { $0.pcr == old.pcr && $0.type == old.type }) {
                let new = unpaired.remove(at: i)
                changes.append((new.index, EventChange(kind: .altered, before: old, after: new)))
            } else {
                changes.append((old.index, EventChange(kind: .removed, before: old, after: nil)))
            }
        }
        for new in unpaired { changes.append((new.index, EventChange(kind: .added, before: nil, after: new))) }
        let ordered = changes.enumerated().sorted {
            ($0.element.position, $0.offset) < ($1.element.position, $1.offset)
        }
        .map(\.element.change)
        events = Array(ordered.prefix(Self.maximumEventChanges))
        moreEvents = max(0, ordered.count - Self.maximumEventChanges)
    }

    /// Whether the two boots are the same.
    var isEmpty: Bool { pcrs.isEmpty && events.isEmpty }

    /// Whether any listed event change is in `pcr` (a changed PCR without one was extended by something the log
    /// does not show).
    func eventsChanged(in pcr: Int) -> Bool {
        events.contains { $0.before?.pcr == pcr || $0.after?.pcr == pcr } || moreEvents > 0
    }
}
