/// A Hyper-V hypercall status code (RAX bits 15:0).
public struct HvStatus: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let success = HvStatus(rawValue: 0)
    public static let invalidHypercallCode = HvStatus(rawValue: 2)
    public static let invalidHypercallInput = HvStatus(rawValue: 3)
    public static let invalidAlignment = HvStatus(rawValue: 4)
    public static let invalidParameter = HvStatus(rawValue: 5)
    public static let accessDenied = HvStatus(rawValue: 6)
    public static let operationDenied = HvStatus(rawValue: 8)
    public static let insufficientMemory = HvStatus(rawValue: 0x0B)
    public static let invalidPortID = HvStatus(rawValue: 0x11)
    public static let invalidConnectionID = HvStatus(rawValue: 0x12)
    public static let insufficientBuffers = HvStatus(rawValue: 0x13)
    public static let timeOut = HvStatus(rawValue: 0x78)

    public var description: String {
        let names: [UInt16: String] = [
            0: "SUCCESS", 2: "INVALID_HYPERCALL_CODE", 3: "INVALID_HYPERCALL_INPUT", 4: "INVALID_ALIGNMENT",
            5: "INVALID_PARAMETER", 6: "ACCESS_DENIED", 8: "OPERATION_DENIED", 0x0B: "INSUFFICIENT_MEMORY",
            0x11: "INVALID_PORT_ID", 0x12: "INVALID_CONNECTION_ID", 0x13: "INSUFFICIENT_BUFFERS", 0x78: "TIME_OUT",
        ]
        return "HV_STATUS_" + (names[rawValue] ?? "0x" + String(rawValue, radix: 16))
    }
}
