import KeelNetwork
import KeelSystem
import KeelVMBus

/// The synthetic network adapter (Hyper-V's NetVSP) that Linux's `hv_netvsc` binds to, bridged
/// to a host TAP interface. NVSP and RNDIS are the pure `KeelNetwork` core; this adapter moves
/// bytes between guest memory (send and receive buffers, GPA-direct pages), the channel and the
/// TAP on the adapter's own I/O thread, and follows the TAP's up/down state as the link state.
/// Offloads go through the TAP's virtio-net header: the guest's large sends and open checksums
/// are finished by the host kernel, and while the guest has receive coalescing on, the TAP hands
/// over unsegmented TCP packets that reach the guest as packets of at most 16 000 bytes.
public struct NetworkAdapterDevice: VMBusDevice {
    public let offer: VMBusChannelOffer
    private var adapter: NetworkAdapterProtocol
    private let tap: TapDevice
    private let memory: GuestRAM
    private let log: RateLimitedLog
    private var hostLinkUp: Bool
    private var nextLinkCheck: UInt64 = 0
    /// Frames from the TAP waiting for free receive-buffer sections, and their bytes.
    private var queue: [ReceivedFrame] = []
    private var queuedBytes = 0
    /// Whether the last frame from the TAP was large (the next is then read in place).
    private var expectLargeFrames = false
    /// The receive offloads the TAP was last told about (checksum+TSO while coalescing).
    private var tapOffloads: OffloadSettings?
    /// Frames dropped because the guest's receive buffer stayed full.
    public private(set) var droppedFrames = 0

    /// TAP frames read per wake-up, so one busy adapter cannot starve the loop.
    static let framesPerTick = 256
    /// Frames (and bytes) held while the guest has no free receive section; more are dropped (as a NIC does).
    static let maxQueuedFrames = 512
    static let maxQueuedBytes = 4 << 20
    static let linkCheckInterval: UInt64 = 500_000_000
    /// Frames read straight into guest memory per transfer-page packet (and so the longest run
    /// that receive coalescing can join).
    static let directBatch = 16

    /// - Parameter index: the adapter number; it makes the instance GUID unique.
    public init(index: Int, tap: TapDevice, mac: [UInt8], memory: GuestRAM, log: @escaping @Sendable (String) -> Void) {
        let instance = VMBusGUID(0x4B45_454C, 0x4E45, 0x5421, [0x80, 0, 0, 0, 0, 0, 0, UInt8(truncatingIfNeeded: index)])
        offer = VMBusChannelOffer(classID: VMBusDeviceClass.network, instanceID: instance)
        hostLinkUp = tap.isUp
        adapter = NetworkAdapterProtocol(configuration: .init(macAddress: mac, linkUp: hostLinkUp))
        self.tap = tap
        self.memory = memory
        self.log = RateLimitedLog(sink: log)
    }

    public var pollDescriptors: [Int32] { [tap.descriptor.rawValue] }
    /// Transmit is a stream of packets: letting the guest queue several per signal pays.
    public var batchesGuestSignals: Bool { true }

    public mutating func channelOpened(_ channel: inout VMBusChannel) { adapter.reset() }
    public mutating func channelClosed() { adapter.reset() }

    public mutating func packetReceived(_ packet: VMBusPacket, on channel: inout VMBusChannel) {
        perform(adapter.receive(packet), &channel)
        flushQueue(&channel)   // the guest's completions free receive sections
    }

    public mutating func tick(_ channel: inout VMBusChannel) {
        let now = HostClock.monotonicNanoseconds()
        if now >= nextLinkCheck {
            nextLinkCheck = now + Self.linkCheckInterval
            let up = tap.isUp
            if up != hostLinkUp {
                hostLinkUp = up
                _ = log.log("network \(tap.name): host link \(up ? "up" : "down")")
                perform(adapter.setLink(up: up), &channel)
            }
        }
        var direct: [DirectFrame] = []
        direct.reserveCapacity(Self.directBatch)
        for _ in 0..<Self.framesPerTick {
            // Large frames go straight into the guest's receive sections while nothing waits
            // ahead of them; small ones (and anything while frames are queued) are copied, which
            // costs less for them than reserving a whole chain of sections. The last frame's size
            // picks the way for the next.
            if expectLargeFrames, queue.isEmpty, !channel.isCongested, let reservation = adapter.reserveReceive() {
                let ranges = reservation.dataSegments
                if ranges.allSatisfy({ memory.contains($0.address, count: $0.length) }) {
                    guard let frame = readDirect(into: reservation, ranges) else {
                        adapter.cancel(reservation)
                        break
                    }
                    expectLargeFrames = frame.length > DirectFrame.fullReadLimit
                    direct.append(frame)
                    if direct.count == Self.directBatch {
                        perform(adapter.deliverDirect(direct), &channel)
                        direct.removeAll(keepingCapacity: true)
                    }
                    continue
                }
                adapter.cancel(reservation)   // not guest RAM: the copying path reports it
            }
            guard let (header, frame) = tap.read() else { break }
            expectLargeFrames = frame.count > DirectFrame.fullReadLimit
            guard queue.count < Self.maxQueuedFrames, queuedBytes + frame.count <= Self.maxQueuedBytes else {
                droppedFrames += 1
                _ = log.log("network \(tap.name): guest receive buffer full, frame dropped (\(droppedFrames) so far)")
                continue
            }
            queue.append(ReceivedFrame(frame, header: header))
            queuedBytes += frame.count
        }
        if !direct.isEmpty { perform(adapter.deliverDirect(direct), &channel) }
        flushQueue(&channel)
    }

    /// One TAP frame read into reserved receive sections (`ranges`, guest RAM), with its first
    /// bytes read back; nil when none is waiting.
    private func readDirect(into reservation: ReceiveReservation, _ ranges: [GuestSegment]) -> DirectFrame? {
        guard let (header, length) = tap.read(intoGuest: ranges, in: memory) else { return nil }
        let visible = length <= DirectFrame.fullReadLimit ? length : DirectFrame.headLength
        return DirectFrame(reservation: reservation, length: length, header: header,
                           bytes: read(reservation.dataSegments, limit: visible) ?? [])
    }

    /// Delivers queued frames, several per transfer-page packet, while receive sections are free.
    private mutating func flushQueue(_ channel: inout VMBusChannel) {
        // A full host→guest ring: hold frames (the queue and then the TAP absorb them) rather
        // than let completions of the guest's sends wait behind them or be dropped.
        while !queue.isEmpty, !channel.isCongested {
            let (delivery, consumed) = adapter.deliverFrames(queue)
            let taken = min(consumed, queue.count)
            queuedBytes -= queue.prefix(taken).reduce(0) { $0 + $1.bytes.count }
            queue.removeFirst(taken)
            if let delivery { perform([.deliver(delivery)], &channel) }
            if consumed == 0 { break }
        }
    }

    private mutating func perform(_ actions: [NetworkAction], _ channel: inout VMBusChannel) {
        for action in actions {
            switch action {
            case .send(let packet):
                channel.send(packet)
            case .mapReceiveBuffer(let handle):
                perform(adapter.attachReceiveBuffer(pages: channel.gpadlPages(handle)), &channel)
            case .mapSendBuffer(let handle):
                perform(adapter.attachSendBuffer(pages: channel.gpadlPages(handle)), &channel)
            case .releaseReceiveBuffer, .releaseSendBuffer:
                break   // the protocol already stopped using it
            case .readRNDIS(let transfer):
                // A large single packet (netvsc's GPA-direct pages) goes out without copying its
                // payload; everything else is read whole.
                if transfer.sectionIndex == nil, transfer.length > NetworkAdapterProtocol.transmitPrefixLength,
                   let prefix = read(transfer.segments, limit: NetworkAdapterProtocol.transmitPrefixLength),
                   let actions = adapter.rndisPacket(prefix: prefix, for: transfer) {
                    perform(actions, &channel)
                } else {
                    perform(adapter.rndisMessage(read(transfer.segments), for: transfer), &channel)
                }
            case .transmit(let transmit):
                if !tap.write(header: transmit.header, head: transmit.frame,
                              guestRanges: transmit.rest, in: memory) {
                    _ = log.log("network \(tap.name): host side not ready or refused a frame, frame dropped")
                }
            case .deliver(let delivery):
                let memory = memory
                if delivery.forEachWrite({ address, bytes in (try? memory.write(bytes, at: address)) != nil }) {
                    channel.send(delivery.packet)
                } else {
                    _ = log.log("network \(tap.name): receive buffer outside guest memory")
                    perform(adapter.abandon(delivery), &channel)
                }
            case .diagnostic(let diagnostic):
                _ = log.log("network \(tap.name): \(diagnostic.message)")
            }
        }
        followOffloadSettings()
    }

    /// Tells the TAP what the guest can take: unsegmented TCP (with open checksums) only while it
    /// has receive coalescing on; otherwise the host kernel segments and checksums.
    private mutating func followOffloadSettings() {
        let settings = adapter.offloadSettings
        guard settings != tapOffloads else { return }
        let wasCoalescing = tapOffloads?.coalescing ?? false
        tapOffloads = settings
        do {
            try tap.setOffloads(checksum: settings.coalescing, tcpv4: settings.coalesceIPv4, tcpv6: settings.coalesceIPv6)
            if settings.coalescing != wasCoalescing {
                _ = log.log("network \(tap.name): receive coalescing \(settings.coalescing ? "on" : "off")")
            }
        } catch {
            _ = log.log("network \(tap.name): \(error)")
        }
    }

    /// The guest bytes of an RNDIS transfer (at most the first `limit`), or nil if any part is
    /// outside guest memory.
    private func read(_ segments: [GuestSegment], limit: Int = .max) -> [UInt8]? {
        memory.gather(segments, limit: limit)
    }
}
