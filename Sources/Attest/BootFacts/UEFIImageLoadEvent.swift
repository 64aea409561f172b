/// UEFI_IMAGE_LOAD_EVENT — PFP §10.4.3 (EV_EFI_BOOT_SERVICES_APPLICATION and drivers).
public struct UEFIImageLoadEvent: Hashable, Sendable {
    /// ImageLocationInMemory: where firmware says it loaded the image (not attested).
    public let locationInMemory: UInt64
    /// ImageLengthInMemory: the image size in bytes, as claimed.
    public let lengthInMemory: UInt64
    /// ImageLinkTimeAddress: the image's link-time base address, as claimed.
    public let linkTimeAddress: UInt64
    /// The EFI device path, as text ("PciRoot(0x0)/…/HD(1,GPT,…)/\EFI\BOOT\BOOTX64.EFI").
    public let devicePath: String

    /// Decodes a UEFI_IMAGE_LOAD_EVENT; a device path longer than the remaining data is an error.
    public init(bytes: [UInt8]) throws(AttestError) {
        var r = ByteReader(bytes)
        locationInMemory = try r.readUInt64("UEFI_IMAGE_LOAD_EVENT.ImageLocationInMemory", .little)
        lengthInMemory = try r.readUInt64("UEFI_IMAGE_LOAD_EVENT.ImageLengthInMemory", .little)
        linkTimeAddress = try r.readUInt64("UEFI_IMAGE_LOAD_EVENT.ImageLinkTimeAddress", .little)
        let length = try r.readUInt64("UEFI_IMAGE_LOAD_EVENT.LengthOfDevicePath", .little)
        guard length <= UInt64(r.remaining) else {
            throw .truncated(
                "UEFI_IMAGE_LOAD_EVENT.DevicePath", at: r.offset, needed: r.remaining + 1, available: r.remaining)
        }
        devicePath = EFIDevicePath.text(try r.readBytes("UEFI_IMAGE_LOAD_EVENT.DevicePath", count: Int(length)))
    }
}

/// EFI device paths (UEFI 2.10 §10) rendered as text; nodes Vigil does not know are shown as Path(t,s).
public enum EFIDevicePath {
    static let maxNodes = 256

    /// Renders a device path as text, node by node, up to the end node. Unknown nodes become "Path(type,subtype)";
    /// rendering stops at the first malformed node (it never throws).
    public static func text(_ bytes: [UInt8]) -> String {
        var r = ByteReader(bytes)
        var parts: [String] = []
        while !r.isAtEnd, parts.count < maxNodes {
            guard let type = try? r.readUInt8("node type"), let subtype = try? r.readUInt8("node subtype"),
                let length = try? r.readUInt16("node length", .little), length >= 4,
                let body = try? r.readBytes("node", count: Int(length) - 4)
            else { break }
            if type == 0x7F { break }
            parts.append(node(type: type, subtype: subtype, body: body))
        }
        return parts.joined(separator: "/")
    }

    static func node(type: UInt8, subtype: UInt8, body: [UInt8]) -> String {
        var r = ByteReader(body)
        switch (type, subtype) {
        case (4, 4):
            return UTF16Text.decode(body)
        case (4, 1):
            guard let part = try? r.readUInt32("partition", .little), (try? r.skip("start", count: 16)) != nil,
                let sig = try? r.readBytes("signature", count: 16), let format = try? r.readUInt8("format")
            else { return "HD(?)" }
            if format == 2,
                let g = try? { () throws(AttestError) -> EFIGUID in
                    var s = ByteReader(sig)
                    return try EFIGUID(parsing: &s, "sig")
                }()
            {
                return "HD(\(part),GPT,\(g))"
            }
            return "HD(\(part),MBR)"
        case (2, 1):
            guard let hid = try? r.readUInt32("HID", .little), let uid = try? r.readUInt32("UID", .little) else {
                return "Acpi(?)"
            }
            return hid == 0x0A03_41D0
                ? "PciRoot(0x\(String(uid, radix: 16)))"
                : "Acpi(0x\(String(hid, radix: 16)),0x\(String(uid, radix: 16)))"
        case (1, 1):
            guard let function = try? r.readUInt8("function"), let device = try? r.readUInt8("device") else {
                return "Pci(?)"
            }
            return "Pci(0x\(String(device, radix: 16)),0x\(String(function, radix: 16)))"
        case (4, 6):
            return "FvFile(\(body.count == 16 ? Self.guid(body) : "?"))"
        case (4, 7):
            return "Fv(\(body.count == 16 ? Self.guid(body) : "?"))"
        default:
            return "Path(\(type),\(subtype))"
        }
    }

    static func guid(_ b: [UInt8]) -> String {
        var r = ByteReader(b)
        return (try? EFIGUID(parsing: &r, "guid"))?.description ?? "?"
    }
}
