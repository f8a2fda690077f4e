/// Why an AML term could not be encoded.
public enum AMLError: Error, CustomStringConvertible, Equatable {
    case invalidNameSegment(String)
    case invalidNameString(String)
    case invalidString(String)
    case packageTooLarge(length: Int)
    case tooManyElements(count: Int)
    case invalidArgumentCount(Int)
    case invalidIRQ(UInt8)
    case invalidRange(minimum: UInt64, maximum: UInt64)
    case invalidEISAID(String)

    public var description: String {
        switch self {
        case let .invalidNameSegment(s):
            "invalid AML name segment \"\(s)\": 1–4 characters of A–Z, 0–9, _ (not starting with a digit)"
        case let .invalidNameString(s): "invalid AML name path \"\(s)\""
        case let .invalidString(s): "AML string \"\(s)\" must be ASCII without NUL"
        case let .packageTooLarge(length): "AML package of \(length) bytes exceeds the 2^28-byte PkgLength limit"
        case let .tooManyElements(count): "AML Package has \(count) elements; at most 255 are encodable"
        case let .invalidArgumentCount(n): "AML method argument count \(n) is outside 0…7"
        case let .invalidIRQ(irq): "IRQ \(irq) is outside 0…15"
        case let .invalidRange(minimum, maximum): "address range \(hex(minimum))…\(hex(maximum)) is empty or out of bounds"
        case let .invalidEISAID(s): "invalid EISA id \"\(s)\": expected three letters and four hex digits"
        }
    }
}

/// A minimal ACPI Machine Language encoder: each function returns the encoded bytes of one term,
/// so trees are built by nesting calls. Enough for Keel's DSDT (the `\_S5` package) and device
/// nodes such as VMBus (`_HID`, `_UID`, `_CRS`, `_STA`). Names shorter than four characters are
/// padded with `_` as ASL does (`_SB` → `_SB_`). Opcodes follow ACPI 6.5 chapter 20.
public enum AML {
    enum Op {
        static let zero: UInt8 = 0x00, one: UInt8 = 0x01, ones: UInt8 = 0xFF
        static let name: UInt8 = 0x08, bytePrefix: UInt8 = 0x0A, wordPrefix: UInt8 = 0x0B
        static let dwordPrefix: UInt8 = 0x0C, stringPrefix: UInt8 = 0x0D, qwordPrefix: UInt8 = 0x0E
        static let scope: UInt8 = 0x10, buffer: UInt8 = 0x11, package: UInt8 = 0x12
        static let method: UInt8 = 0x14, returnOp: UInt8 = 0xA4
        static let extPrefix: UInt8 = 0x5B, device: UInt8 = 0x82
        static let rootChar: UInt8 = 0x5C, parentPrefix: UInt8 = 0x5E
        static let dualNamePrefix: UInt8 = 0x2E, multiNamePrefix: UInt8 = 0x2F
    }

    // MARK: Lengths and names

    /// PkgLength for a body of `contentLength` bytes; the encoded length counts itself (1–4 bytes).
    public static func pkgLength(_ contentLength: Int) throws(AMLError) -> [UInt8] {
        if contentLength + 1 <= 0x3F { return [UInt8(contentLength + 1)] }
        for extra in 1...3 {
            let total = contentLength + 1 + extra
            if total < 1 << (4 + 8 * extra) {
                var out = [UInt8(extra << 6) | UInt8(total & 0xF)]
                for i in 0..<extra { out.append(UInt8(truncatingIfNeeded: total >> (4 + 8 * i))) }
                return out
            }
        }
        throw .packageTooLarge(length: contentLength)
    }

    /// A 4-byte NameSeg; shorter names are padded with `_`.
    public static func nameSeg(_ name: String) throws(AMLError) -> [UInt8] {
        let chars = Array(name.utf8)
        guard (1...4).contains(chars.count), let first = chars.first, !(0x30...0x39).contains(first),
              chars.allSatisfy({ (0x41...0x5A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5F })
        else { throw .invalidNameSegment(name) }
        return chars + [UInt8](repeating: 0x5F, count: 4 - chars.count)
    }

    /// A NameString: optional `\` root or `^` parent prefixes, then dot-separated segments
    /// (`\_SB.PCI0`). A bare `\` is the root itself.
    public static func nameString(_ path: String) throws(AMLError) -> [UInt8] {
        var rest = Substring(path)
        var prefix: [UInt8] = []
        if rest.first == "\\" {
            prefix = [Op.rootChar]
            rest = rest.dropFirst()
        } else {
            while rest.first == "^" {
                prefix.append(Op.parentPrefix)
                rest = rest.dropFirst()
            }
        }
        if rest.isEmpty {
            guard !prefix.isEmpty else { throw .invalidNameString(path) }
            return prefix + [0x00]  // NullName
        }
        var segments: [UInt8] = []
        let parts = rest.split(separator: ".", omittingEmptySubsequences: false)
        for part in parts { segments += try nameSeg(String(part)) }
        switch parts.count {
        case 1: return prefix + segments
        case 2: return prefix + [Op.dualNamePrefix] + segments
        case 3...255: return prefix + [Op.multiNamePrefix, UInt8(parts.count)] + segments
        default: throw .invalidNameString(path)
        }
    }

    // MARK: Data objects

    /// An integer constant in its smallest form (Zero, One, Ones, then Byte/Word/DWord/QWord).
    public static func integer(_ value: UInt64) -> [UInt8] {
        var w = ByteWriter()
        switch value {
        case 0: w.u8(Op.zero)
        case 1: w.u8(Op.one)
        case .max: w.u8(Op.ones)
        case ...0xFF: w.u8(Op.bytePrefix); w.u8(UInt8(value))
        case ...0xFFFF: w.u8(Op.wordPrefix); w.u16(UInt16(value))
        case ...0xFFFF_FFFF: w.u8(Op.dwordPrefix); w.u32(UInt32(value))
        default: w.u8(Op.qwordPrefix); w.u64(value)
        }
        return w.bytes
    }

    /// A NUL-terminated ASCII string constant.
    public static func string(_ text: String) throws(AMLError) -> [UInt8] {
        let chars = Array(text.utf8)
        guard chars.allSatisfy({ (0x01...0x7F).contains($0) }) else { throw .invalidString(text) }
        return [Op.stringPrefix] + chars + [0x00]
    }

    /// A compressed EISA id such as "PNP0A03" as the DWord integer ASL's EISAID() produces.
    public static func eisaID(_ id: String) throws(AMLError) -> [UInt8] {
        let c = Array(id.utf8)
        guard c.count == 7, c[0..<3].allSatisfy({ (0x41...0x5A).contains($0) }) else { throw .invalidEISAID(id) }
        var product: UInt32 = 0
        for ch in c[3..<7] {
            guard let digit = hexDigit(ch) else { throw .invalidEISAID(id) }
            product = product << 4 | UInt32(digit)
        }
        let vendor = UInt32(c[0] - 0x40) << 10 | UInt32(c[1] - 0x40) << 5 | UInt32(c[2] - 0x40)
        // Stored big-endian: vendor (2 bytes) then product (2 bytes).
        let bigEndian = [UInt8(vendor >> 8), UInt8(vendor & 0xFF), UInt8(product >> 8), UInt8(product & 0xFF)]
        return [Op.dwordPrefix] + bigEndian
    }

    /// Package(){ elements } (each element an encoded data object or name).
    public static func package(_ elements: [[UInt8]]) throws(AMLError) -> [UInt8] {
        guard elements.count <= 255 else { throw .tooManyElements(count: elements.count) }
        let body = [UInt8(elements.count)] + elements.flatMap { $0 }
        return try [Op.package] + pkgLength(body.count) + body
    }

    /// Buffer(){ bytes } with its size as an integer constant.
    public static func buffer(_ bytes: [UInt8]) throws(AMLError) -> [UInt8] {
        let body = integer(UInt64(bytes.count)) + bytes
        return try [Op.buffer] + pkgLength(body.count) + body
    }

    // MARK: Named objects and code

    /// Name(path, value).
    public static func name(_ path: String, _ value: [UInt8]) throws(AMLError) -> [UInt8] {
        try [Op.name] + nameString(path) + value
    }

    /// Scope(path){ terms }.
    public static func scope(_ path: String, _ terms: [[UInt8]]) throws(AMLError) -> [UInt8] {
        let body = try nameString(path) + terms.flatMap { $0 }
        return try [Op.scope] + pkgLength(body.count) + body
    }

    /// Device(path){ terms }.
    public static func device(_ path: String, _ terms: [[UInt8]]) throws(AMLError) -> [UInt8] {
        let body = try nameString(path) + terms.flatMap { $0 }
        return try [Op.extPrefix, Op.device] + pkgLength(body.count) + body
    }

    /// Method(path, argumentCount, Serialized/NotSerialized){ terms }.
    public static func method(_ path: String, argumentCount: Int = 0, serialized: Bool = false,
                              _ terms: [[UInt8]]) throws(AMLError) -> [UInt8] {
        guard (0...7).contains(argumentCount) else { throw .invalidArgumentCount(argumentCount) }
        let flags = UInt8(argumentCount) | (serialized ? 0x08 : 0)
        let body = try nameString(path) + [flags] + terms.flatMap { $0 }
        return try [Op.method] + pkgLength(body.count) + body
    }

    /// Return(value).
    public static func returnValue(_ value: [UInt8]) -> [UInt8] { [Op.returnOp] + value }

    static func hexDigit(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x41 + 10
        default: nil
        }
    }
}
