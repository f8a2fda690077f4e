/// Scale and offset of the reference TSC page (TLFS reference time = 100 ns ticks):
/// `referenceTime = ((guestTSC × scale) >> 64) + offset`.
public struct ReferenceTSCParameters: Sendable, Equatable {
    public let scale: UInt64
    public let offset: Int64

    /// Nil when the frequency is 10 MHz or less (the scale would not fit in 64 bits).
    public init?(tscFrequencyHz: UInt64, guestTSCAtStart: UInt64 = 0) {
        guard tscFrequencyHz > 10_000_000 else { return nil }
        let scale = tscFrequencyHz.dividingFullWidth((high: 10_000_000, low: 0)).quotient
        self.scale = scale
        let startTicks = guestTSCAtStart.multipliedFullWidth(by: scale).high
        self.offset = 0 &- Int64(truncatingIfNeeded: startTicks)
    }

    public init(scale: UInt64, offset: Int64) {
        self.scale = scale
        self.offset = offset
    }

    /// Reference time for a guest TSC value, exactly as the guest computes it from the page.
    /// The VM should build the TIME_REF_COUNT clock from this so MSR and page agree.
    public func referenceTime(atGuestTSC tsc: UInt64) -> UInt64 {
        tsc.multipliedFullWidth(by: scale).high &+ UInt64(bitPattern: offset)
    }

    /// Size of the TSC page.
    public static let pageSize = 4096

    /// The page contents with the given sequence (0 = invalid, guest uses TIME_REF_COUNT).
    public func pageBytes(sequence: UInt32) -> [UInt8] {
        var page = [UInt8](repeating: 0, count: Self.pageSize)
        page.storeLE(UInt64(sequence), at: 0, count: 4)
        page.storeLE(scale, at: 8, count: 8)
        page.storeLE(UInt64(bitPattern: offset), at: 16, count: 8)
        return page
    }
}
