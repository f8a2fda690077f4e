/// Bytes to copy into guest memory at a guest-physical address.
public struct GuestBlob: Sendable, Equatable {
    public var guestPhysicalAddress: UInt64
    public var bytes: [UInt8]
    public init(guestPhysicalAddress: UInt64, bytes: [UInt8]) {
        self.guestPhysicalAddress = guestPhysicalAddress
        self.bytes = bytes
    }
}
