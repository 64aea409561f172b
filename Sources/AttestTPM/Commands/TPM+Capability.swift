public import Attest
internal import CTSS2

extension TPM {
    /// One TPM2_GetCapability call, decoded. Use the typed helpers below unless you need the raw answer.
    ///
    /// Corresponding ESAPI call: `Esys_GetCapability` (TPM2_GetCapability, Part 3 §30.2).
    public func getCapability(_ capability: TPMCapability, property: UInt32, count: UInt32) throws(TPMError) -> (
        data: TPMSCapabilityData, moreData: Bool
    ) {
        let ctx = context.raw
        var more: UInt8 = 0
        var data: UnsafeMutablePointer<TPMS_CAPABILITY_DATA>? = nil
        try tss2Call("Esys_GetCapability", logger: logger) {
            Esys_GetCapability(ctx, ESYS.none, ESYS.none, ESYS.none, capability.rawValue, property, count, &more, &data)
        }
        defer { Esys_Free(data) }
        guard let data else { throw TPMError.invalidResponse("Esys_GetCapability returned no data") }
        let bytes = try MU.marshal(data.pointee, Tss2_MU_TPMS_CAPABILITY_DATA_Marshal, "TPMS_CAPABILITY_DATA")
        do {
            return (try TPMSCapabilityData(bytes: bytes), more != 0)
        } catch {
            throw TPMError.invalidResponse("TPM2_GetCapability: \(error)")
        }
    }

    /// TPM properties (TPM_CAP_TPM_PROPERTIES) from `first`, following `moreData`.
    public func properties(from first: TPMProperty = .familyIndicator, count: UInt32 = 64) throws(TPMError) -> [UInt32:
        UInt32]
    {
        var result: [UInt32: UInt32] = [:]
        var next = first.rawValue
        for _ in 0..<16 {
            let (data, more) = try getCapability(.tpmProperties, property: next, count: count)
            guard case .properties(let props) = data.data, let last = props.keys.max() else { break }
            result.merge(props) { a, _ in a }
            guard more, last < UInt32.max else { break }
            next = last + 1
        }
        return result
    }

    /// Handles in use in a range (TPM_CAP_HANDLES), following `moreData`: persistent objects, NV indices,
    /// loaded transient objects or sessions.
    public func handles(from first: TPMHandle) throws(TPMError) -> [TPMHandle] {
        var result: [TPMHandle] = []
        var next = first.rawValue
        let rangeTop = first.rawValue & 0xFF00_0000
        for _ in 0..<64 {
            let (data, more) = try getCapability(.handles, property: next, count: 64)
            guard case .handles(let hs) = data.data else { break }
            let inRange = hs.filter { $0 & 0xFF00_0000 == rangeTop }
            result.append(contentsOf: inRange.map(TPMHandle.init(rawValue:)))
            guard more, let last = inRange.last, last < UInt32.max else { break }
            next = last + 1
        }
        return result
    }

    /// The PCR banks the TPM has allocated with at least one PCR (TPM_CAP_PCRS), in the TPM's order.
    public func activeBanks() throws(TPMError) -> [TPMAlgorithmID] {
        if let cachedActiveBanks { return cachedActiveBanks }
        let allocation = try pcrAllocation()
        let banks = allocation.selections.filter { !$0.pcrs.isEmpty }.map(\.hash)
        cachedActiveBanks = banks
        return banks
    }

    /// The PCR allocation (TPM_CAP_PCRS): every bank the TPM implements and which PCRs it has allocated.
    public func pcrAllocation() throws(TPMError) -> TPMLPCRSelection {
        let (data, _) = try getCapability(.pcrs, property: 0, count: 1)
        guard case .pcrs(let selection) = data.data else {
            throw TPMError.invalidResponse("TPM_CAP_PCRS: unexpected answer")
        }
        return selection
    }

    /// Algorithms the TPM implements (TPM_CAP_ALGS).
    public func algorithms() throws(TPMError) -> [TPMAlgorithmID] {
        let (data, _) = try getCapability(.algorithms, property: 0, count: 128)
        guard case .algorithms(let algs) = data.data else {
            throw TPMError.invalidResponse("TPM_CAP_ALGS: unexpected answer")
        }
        return algs.keys.sorted()
    }

    /// TPM_PT_NV_BUFFER_MAX: the largest NV read or write in one command.
    public func nvBufferMax() throws(TPMError) -> Int {
        if let cachedNVBufferMax { return cachedNVBufferMax }
        let props = try properties(from: .nvBufferMax, count: 1)
        guard let value = props[TPMProperty.nvBufferMax.rawValue], value > 0 else {
            throw TPMError.invalidResponse("TPM_PT_NV_BUFFER_MAX is missing")
        }
        let size = Int(min(value, 2048))
        cachedNVBufferMax = size
        return size
    }

    /// Manufacturer, firmware and spec facts read from the fixed properties.
    public func identification() throws(TPMError) -> TPMIdentification {
        let p = try properties(from: .familyIndicator, count: 64)
        func ascii(_ v: UInt32?) -> String {
            guard let v else { return "" }
            let bytes = [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
            return String(decoding: bytes.filter { $0 >= 0x20 && $0 < 0x7F }, as: UTF8.self)
        }
        let manufacturer = p[TPMProperty.manufacturer.rawValue] ?? 0
        let fw1 = p[TPMProperty.firmwareVersion1.rawValue] ?? 0
        let fw2 = p[TPMProperty.firmwareVersion2.rawValue] ?? 0
        let vendor = [TPMProperty.vendorString1, .vendorString2, .vendorString3, .vendorString4]
            .map { ascii(p[$0.rawValue]) }.joined().trimmingWhitespace()
        return TPMIdentification(
            manufacturerID: manufacturer, manufacturer: ascii(manufacturer).trimmingWhitespace(), vendorString: vendor,
            firmwareVersion: UInt64(fw1) << 32 | UInt64(fw2),
            specFamily: ascii(p[TPMProperty.familyIndicator.rawValue]).trimmingWhitespace(),
            specRevision: p[TPMProperty.revision.rawValue] ?? 0,
            specYear: p[TPMProperty.year.rawValue] ?? 0, specDayOfYear: p[TPMProperty.dayOfYear.rawValue] ?? 0,
            pcrCount: Int(p[TPMProperty.pcrCount.rawValue] ?? 0),
            nvBufferMax: Int(p[TPMProperty.nvBufferMax.rawValue] ?? 0),
            inputBufferMax: Int(p[TPMProperty.inputBuffer.rawValue] ?? 0))
    }
}

/// Who made the TPM and what it runs (TPM_PT_MANUFACTURER, TPM_PT_FIRMWARE_VERSION_1/2, …).
public struct TPMIdentification: Hashable, Sendable, Codable {
    /// TPM_PT_MANUFACTURER as a number (the TCG vendor ID, e.g. 0x49424D00 "IBM").
    public let manufacturerID: UInt32
    /// The vendor ID as ASCII ("IBM", "IFX", "STM", "NTC", "INTC").
    public let manufacturer: String
    public let vendorString: String
    /// TPM_PT_FIRMWARE_VERSION_1 << 32 | TPM_PT_FIRMWARE_VERSION_2.
    public let firmwareVersion: UInt64
    public let specFamily: String
    public let specRevision: UInt32
    public let specYear: UInt32
    public let specDayOfYear: UInt32
    public let pcrCount: Int
    public let nvBufferMax: Int
    public let inputBufferMax: Int

    /// Firmware version as vendors print it: "major.minor.build.patch" from the two 32-bit words.
    public var firmwareVersionString: String {
        let v1 = UInt32(truncatingIfNeeded: firmwareVersion >> 32), v2 = UInt32(truncatingIfNeeded: firmwareVersion)
        return "\(v1 >> 16).\(v1 & 0xFFFF).\(v2 >> 16).\(v2 & 0xFFFF)"
    }

    /// The two firmware words in hex, "0x20191023:0x00163636".
    public var firmwareVersionHex: String {
        func h(_ v: UInt32) -> String {
            let s = String(v, radix: 16)
            return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
        }
        return h(UInt32(truncatingIfNeeded: firmwareVersion >> 32)) + ":"
            + h(UInt32(truncatingIfNeeded: firmwareVersion))
    }

    /// Manufacturer ID as "id:49424D00" (the form in EK certificate SubjectAltNames).
    public var manufacturerIDString: String {
        let s = String(manufacturerID, radix: 16, uppercase: true)
        return "id:" + String(repeating: "0", count: max(0, 8 - s.count)) + s
    }
}
