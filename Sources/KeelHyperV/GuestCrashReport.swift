import KeelSystem

/// A guest crash announced through the crash MSRs (write of CRASH_CTL with bit 63).
public struct GuestCrashReport: Sendable, Equatable {
    /// CRASH_P0–P4 at the time of the notify write.
    public var parameters: [UInt64]
    /// The value written to CRASH_CTL.
    public var control: UInt64
    /// Panic text copied out of guest memory when bit 62 (message) was set and P3/P4 described
    /// a readable buffer; at most `maxMessageBytes`.
    public var message: String?
    /// The guest claimed a longer message than `maxMessageBytes`; the text is cut.
    public var messageTruncated: Bool
    /// Why a claimed message could not be read (e.g. outside guest memory), else nil.
    public var messageError: String?

    /// CRASH_CTL bit 63: the guest crashed.
    public static let notifyBit: UInt64 = 1 << 63
    /// CRASH_CTL bit 62: P3 = message GPA, P4 = message length.
    public static let messageBit: UInt64 = 1 << 62
    /// Upper bound on the message copied from the guest (Linux uses one page).
    public static let maxMessageBytes = 4096

    public init(parameters: [UInt64], control: UInt64, message: String? = nil,
                messageTruncated: Bool = false, messageError: String? = nil) {
        self.parameters = parameters
        self.control = control
        self.message = message
        self.messageTruncated = messageTruncated
        self.messageError = messageError
    }

    /// Builds the report, reading the message (bounded) when the control value asks for one.
    static func capture(parameters: [UInt64], control: UInt64, memory: any GuestMemory) -> GuestCrashReport {
        var report = GuestCrashReport(parameters: parameters, control: control)
        guard control & messageBit != 0, parameters.count == 5 else { return report }
        let gpa = parameters[3], claimed = parameters[4]
        guard claimed > 0 else { return report }
        let length = Int(min(claimed, UInt64(maxMessageBytes)))
        report.messageTruncated = claimed > UInt64(maxMessageBytes)
        do {
            var bytes = try memory.read(at: gpa, count: length)
            if let nul = bytes.firstIndex(of: 0) { bytes.removeSubrange(nul...) }
            report.message = String(decoding: bytes, as: UTF8.self)
        } catch {
            report.messageError = "crash message buffer \(hex(gpa)) (+\(length) bytes) is outside guest memory"
        }
        return report
    }
}

func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
