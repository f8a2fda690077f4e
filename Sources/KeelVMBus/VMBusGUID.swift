/// A GUID as VMBus carries it: 16 bytes in Microsoft mixed-endian order (the first three
/// fields little-endian, the last eight bytes as written). `description` gives the usual
/// textual form, `wireBytes` the order on the wire and in the `vmbus:` modalias.
public struct VMBusGUID: Sendable, Hashable, CustomStringConvertible {
    public let data1: UInt32
    public let data2: UInt16
    public let data3: UInt16
    /// The last eight bytes, in textual order.
    public let data4: [UInt8]

    public init(_ data1: UInt32, _ data2: UInt16, _ data3: UInt16, _ data4: [UInt8]) {
        self.data1 = data1
        self.data2 = data2
        self.data3 = data3
        var tail = Array(data4.prefix(8))
        tail += repeatElement(0, count: 8 - tail.count)
        self.data4 = tail
    }

    /// Parses "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (braces and case ignored); nil if malformed.
    public init?(_ text: String) {
        var hex = text.lowercased()
        if hex.hasPrefix("{"), hex.hasSuffix("}") { hex = String(hex.dropFirst().dropLast()) }
        let groups = hex.split(separator: "-", omittingEmptySubsequences: false)
        guard groups.map(\.count) == [8, 4, 4, 4, 12] else { return nil }
        let digits = groups.joined()
        var bytes: [UInt8] = []
        var index = digits.startIndex
        while index < digits.endIndex {
            let next = digits.index(index, offsetBy: 2)
            guard let byte = UInt8(digits[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        guard bytes.count == 16 else { return nil }
        let d1 = bytes[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let d2 = bytes[4..<6].reduce(UInt16(0)) { $0 << 8 | UInt16($1) }
        let d3 = bytes[6..<8].reduce(UInt16(0)) { $0 << 8 | UInt16($1) }
        self.init(d1, d2, d3, Array(bytes[8..<16]))
    }

    /// Decodes the 16 wire bytes (mixed-endian); nil unless exactly 16 bytes.
    public init?(wireBytes bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        let r = ByteReader(bytes)
        self.init(r.u32(0), r.u16(4), r.u16(6), Array(bytes[8..<16]))
    }

    /// The all-zero GUID.
    public static let zero = VMBusGUID(0, 0, 0, [])

    /// The 16 bytes in the order VMBus transmits them.
    public var wireBytes: [UInt8] {
        var w = ByteWriter(capacity: 16)
        w.u32(data1)
        w.u16(data2)
        w.u16(data3)
        w.append(data4)
        return w.bytes
    }

    public var description: String {
        func hex<T: FixedWidthInteger>(_ v: T, _ width: Int) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        let tail = data4.map { hex($0, 2) }
        return "\(hex(data1, 8))-\(hex(data2, 4))-\(hex(data3, 4))-\(tail[0..<2].joined())-\(tail[2..<8].joined())"
    }
}
