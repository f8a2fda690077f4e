/// A VMBus protocol version, `(major << 16) | minor` on the wire.
public struct VMBusVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(major: UInt16, minor: UInt16) { rawValue = UInt32(major) << 16 | UInt32(minor) }

    public var major: UInt16 { UInt16(truncatingIfNeeded: rawValue >> 16) }
    public var minor: UInt16 { UInt16(truncatingIfNeeded: rawValue) }
    public var description: String { "\(major).\(minor)" }

    public static func < (a: VMBusVersion, b: VMBusVersion) -> Bool { a.rawValue < b.rawValue }

    /// Windows 8.
    public static let win8 = VMBusVersion(major: 2, minor: 4)
    /// Windows 8.1.
    public static let win8_1 = VMBusVersion(major: 3, minor: 0)
    /// Windows 10.
    public static let win10 = VMBusVersion(major: 4, minor: 0)
    /// Windows 10 RS3.
    public static let win10RS3 = VMBusVersion(major: 4, minor: 1)
    /// Newer Windows 10.
    public static let win10V5 = VMBusVersion(major: 5, minor: 0)
    /// Windows 10 RS4.
    public static let win10RS4 = VMBusVersion(major: 5, minor: 1)
    /// Windows Server 2019.
    public static let win10V5_2 = VMBusVersion(major: 5, minor: 2)
    /// Windows Server 2022.
    public static let win10V5_3 = VMBusVersion(major: 5, minor: 3)

    /// The versions Linux 6.1 and 6.12 request, highest first (the order they are tried).
    public static let linuxVersions: [VMBusVersion] = [
        win10V5_3, win10V5_2, win10RS4, win10V5, win10RS3, win10, win8_1, win8,
    ]

    /// From 3.0 on the guest uses UNLOAD and the message target VP is honoured.
    public var usesMessageTargetVP: Bool { self >= .win8_1 }
    /// From 4.1 on the guest may send MODIFYCHANNEL.
    public var supportsModifyChannel: Bool { self >= .win10RS3 }
    /// From 5.0 on INITIATE_CONTACT carries the message SINT and arrives on connection id 4.
    public var hasMessageSINT: Bool { self >= .win10V5 }
    /// From 5.3 on MODIFYCHANNEL must be answered with MODIFYCHANNEL_RESPONSE.
    public var requiresModifyChannelResponse: Bool { self >= .win10V5_3 }
}
