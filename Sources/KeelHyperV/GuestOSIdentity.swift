/// The guest's self-description written to GUEST_OS_ID (TLFS): bit 63 open source, bits 62:56
/// OS type (1 = Linux), and for Linux the kernel version code in bits 47:16.
public struct GuestOSIdentity: Sendable, Equatable, CustomStringConvertible {
    public let rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public var isOpenSource: Bool { rawValue >> 63 != 0 }
    public var osType: UInt8 { UInt8((rawValue >> 56) & 0x7F) }

    public var description: String {
        guard rawValue != 0 else { return "none" }
        let hexValue = "0x" + String(rawValue, radix: 16)
        guard isOpenSource, osType == 1 else { return "guest OS id \(hexValue)" }
        let code = (rawValue >> 16) & 0xFFFF_FFFF
        return "Linux \(code >> 16 & 0xFF).\(code >> 8 & 0xFF).\(code & 0xFF) (guest OS id \(hexValue))"
    }
}
