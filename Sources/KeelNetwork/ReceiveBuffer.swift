/// The guest's receive buffer cut into `sectionCount` equal sub-allocations of `sectionSize`
/// bytes (one RNDIS message each). A sub-allocation is busy from the transfer-page packet that
/// names it until the guest completes that packet. The last `controlReserve` free sections are
/// kept for RNDIS control messages so data frames cannot starve responses the guest waits for.
struct ReceiveBuffer: Sendable {
    let gpadlHandle: UInt32
    /// The guest's xfer_pageset_id (Linux 0xCAFE), echoed in every transfer-page packet.
    let id: UInt16
    let pages: PageList
    let sectionSize: Int
    let sectionCount: Int
    let controlReserve: Int
    private var free: [Int]
    private var inFlight: [UInt64: [Int]] = [:]
    private var nextTransactionID: UInt64 = 1

    /// Nil if not even one section fits.
    init?(gpadlHandle: UInt32, id: UInt16, pages: PageList, sectionSize: Int) {
        guard sectionSize > 0, pages.byteCount / sectionSize >= 1 else { return nil }
        let count = pages.byteCount / sectionSize
        self.gpadlHandle = gpadlHandle
        self.id = id
        self.pages = pages
        self.sectionSize = sectionSize
        self.sectionCount = count
        self.controlReserve = min(16, count / 8)
        // A stack: popping hands out section 0, 1, 2, ... first.
        self.free = Array((0..<count).reversed())
    }

    var freeCount: Int { free.count }
    var busyCount: Int { sectionCount - free.count }
    var outstandingPackets: Int { inFlight.count }

    /// Sections data may ever use at once (all but the control reserve).
    var dataCapacity: Int { sectionCount - controlReserve }

    /// Free sections data may use (all but the control reserve).
    var freeForData: Int { max(0, free.count - controlReserve) }

    func byteOffset(ofSection index: Int) -> Int { index * sectionSize }

    /// Takes `count` sections for one transfer-page packet; nil if not enough are free.
    mutating func allocate(_ count: Int, control: Bool) -> (transactionID: UInt64, sections: [Int])? {
        guard count > 0, count <= (control ? free.count : freeForData) else { return nil }
        let sections = (0..<count).map { _ in free.removeLast() }
        return (track(sections), sections)
    }

    /// Takes `count` data sections (never the control reserve) for frames not built yet.
    mutating func reserve(_ count: Int) -> [Int]? {
        guard count > 0, count <= freeForData else { return nil }
        return (0..<count).map { _ in free.removeLast() }
    }

    /// Gives reserved sections back unused.
    mutating func unreserve(_ sections: ArraySlice<Int>) { free.append(contentsOf: sections.reversed()) }

    /// Names reserved sections by a new transaction id; the guest's completion frees them.
    mutating func track(_ sections: [Int]) -> UInt64 {
        var id = nextTransactionID
        while id == 0 || inFlight[id] != nil { id &+= 1 }
        nextTransactionID = id &+ 1
        inFlight[id] = sections
        return id
    }

    /// The guest completed packet `transactionID`: its sections are free again. Returns how many
    /// were freed, or nil for an id that names no outstanding packet.
    mutating func release(_ transactionID: UInt64) -> Int? {
        guard let sections = inFlight.removeValue(forKey: transactionID) else { return nil }
        free.append(contentsOf: sections)
        return sections.count
    }
}

/// The guest's send buffer: `sectionCount` sections of the size the host announced.
struct SendBuffer: Sendable {
    let gpadlHandle: UInt32
    let id: UInt16
    let pages: PageList
    let sectionSize: Int
    let sectionCount: Int

    /// Nil if not even one section fits.
    init?(gpadlHandle: UInt32, id: UInt16, pages: PageList, sectionSize: Int) {
        guard sectionSize > 0, pages.byteCount / sectionSize >= 1 else { return nil }
        let count = pages.byteCount / sectionSize
        self.gpadlHandle = gpadlHandle
        self.id = id
        self.pages = pages
        self.sectionSize = sectionSize
        self.sectionCount = count
    }
}

/// A SEND_RECV_BUF / SEND_SEND_BUF waiting for the caller to resolve its GPADL.
struct BufferRequest: Sendable, Equatable {
    let transactionID: UInt64
    let completionRequested: Bool
    let gpadlHandle: UInt32
    let id: UInt16
}
