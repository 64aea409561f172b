/// Repairs one common departure from DER in published TPM vendor certificates: the elements of a SET OF not
/// in the order DER requires (X.690 §11.6: sorted by their encodings, as octet strings padded with trailing
/// zeros). Nuvoton's and Nationz's EK root CAs, for example, have multi-valued RDNs (`CN + O + C`) in the
/// order they were written; strict DER parsers (swift-asn1, Python's cryptography) refuse them, OpenSSL
/// accepts them. Keylime met the same certificates (keylime#944).
///
/// Reordering changes no length, so the repaired encoding has the same size; but it changes the signed bytes,
/// so a repaired certificate's own signature must be checked over the bytes as published
/// (``signedPortion(ofCertificate:)`` and ``signatureValue(ofCertificate:)``).
enum DERSetOrder {
    /// Deepest nesting followed (a certificate is under 10 levels deep).
    static let maxDepth = 32

    /// `bytes` (one definite-length TLV and nothing after it) with every SET's elements in DER order, or
    /// nil when `bytes` is not such a TLV (indefinite lengths, truncation, trailing bytes, too deep).
    static func canonicalized(_ bytes: [UInt8]) -> [UInt8]? {
        guard let (element, rest) = readTLV(bytes[...]), rest.isEmpty else { return nil }
        return canonical(element, depth: 0).map { Array($0) }
    }

    /// The exact bytes of a certificate's `tbsCertificate` (RFC 5280 §4.1.1.1: what its issuer signed).
    static func signedPortion(ofCertificate bytes: [UInt8]) -> ArraySlice<UInt8>? {
        children(ofCertificate: bytes)?.first?.encoding
    }

    /// The content of a certificate's `signatureValue` BIT STRING without its unused-bits octet.
    static func signatureValue(ofCertificate bytes: [UInt8]) -> ArraySlice<UInt8>? {
        guard let parts = children(ofCertificate: bytes), parts.count == 3, parts[2].tag == [0x03],
            parts[2].content.first == 0
        else { return nil }
        return parts[2].content.dropFirst()
    }

    // MARK: TLV walking

    private struct TLV {
        var tag: ArraySlice<UInt8>
        var header: ArraySlice<UInt8>
        var content: ArraySlice<UInt8>
        var encoding: ArraySlice<UInt8>
        var isConstructed: Bool { (tag.first ?? 0) & 0x20 != 0 }
        var isSet: Bool { tag.count == 1 && tag.first == 0x31 }
    }

    private static func children(ofCertificate bytes: [UInt8]) -> [TLV]? {
        guard let (certificate, _) = readTLV(bytes[...]), certificate.tag == [0x30] else { return nil }
        return elements(of: certificate.content)
    }

    private static func elements(of content: ArraySlice<UInt8>) -> [TLV]? {
        var rest = content
        var out: [TLV] = []
        while !rest.isEmpty {
            guard let (element, after) = readTLV(rest) else { return nil }
            out.append(element)
            rest = after
        }
        return out
    }

    /// One TLV from the front of `bytes`: tag (low or high tag number form), definite length up to 4 octets.
    private static func readTLV(_ bytes: ArraySlice<UInt8>) -> (TLV, ArraySlice<UInt8>)? {
        var index = bytes.startIndex
        guard index < bytes.endIndex else { return nil }
        let first = bytes[index]
        index += 1
        if first & 0x1F == 0x1F {  // high tag number: base-128 octets, the last without bit 8
            var count = 0
            while true {
                guard index < bytes.endIndex, count < 4 else { return nil }
                let octet = bytes[index]
                index += 1
                count += 1
                if octet & 0x80 == 0 { break }
            }
        }
        let tagEnd = index
        guard index < bytes.endIndex else { return nil }
        let lengthOctet = bytes[index]
        index += 1
        var length = 0
        if lengthOctet < 0x80 {
            length = Int(lengthOctet)
        } else {
            let count = Int(lengthOctet & 0x7F)
            guard (1...4).contains(count), bytes.endIndex - index >= count else { return nil }  // 0x80: indefinite
            for _ in 0..<count {
                length = length << 8 | Int(bytes[index])
                index += 1
            }
        }
        guard bytes.endIndex - index >= length else { return nil }
        let end = index + length
        let tlv = TLV(
            tag: bytes[bytes.startIndex..<tagEnd], header: bytes[bytes.startIndex..<index],
            content: bytes[index..<end], encoding: bytes[bytes.startIndex..<end])
        return (tlv, bytes[end...])
    }

    /// The element's encoding with every SET below it (itself included) in DER order.
    private static func canonical(_ element: TLV, depth: Int) -> ArraySlice<UInt8>? {
        guard element.isConstructed else { return element.encoding }
        guard depth < maxDepth, let parts = elements(of: element.content) else { return nil }
        var encodings: [ArraySlice<UInt8>] = []
        encodings.reserveCapacity(parts.count)
        for part in parts {
            guard let encoding = canonical(part, depth: depth + 1) else { return nil }
            encodings.append(encoding)
        }
        if element.isSet { encodings.sort(by: derPrecedes) }
        var out = element.header
        for encoding in encodings { out.append(contentsOf: encoding) }
        return out
    }

    /// X.690 §11.6: octet-string order, the shorter padded at its end with zero octets.
    private static func derPrecedes(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Bool {
        let count = max(a.count, b.count)
        for i in 0..<count {
            let x = i < a.count ? a[a.startIndex + i] : 0
            let y = i < b.count ? b[b.startIndex + i] : 0
            if x != y { return x < y }
        }
        return false
    }
}
