import KeelStorage
import KeelSystem
import KeelVMBus
#if canImport(Glibc)
import Glibc
#endif

/// The synthetic SCSI controller (Hyper-V's StorVSP) that Linux's `hv_storvsc` binds to: disks
/// on path 0, target 0, LUN 0, 1, … backed by raw images. The protocol and SCSI emulation are
/// the pure `KeelStorage` core; this adapter moves data between the images and the guest's
/// buffers (vectored, straight into guest RAM after bounds checks) on the controller's own I/O
/// thread, and turns host I/O errors into SCSI sense for the guest.
public struct StorageControllerDevice: VMBusDevice {
    /// Largest transfer per request: 1 MiB (Linux then sends 1 MiB sequential I/O as one
    /// request instead of four 256 KiB ones).
    public static let maxTransferBytes: UInt32 = 1 << 20

    public let offer: VMBusChannelOffer
    private var controller: StorageControllerProtocol
    private let targets: SCSITargetMap
    private let images: [SCSIAddress: DiskImage]
    private let memory: GuestRAM
    private let log: RateLimitedLog
    /// Nil for the primary channel; the sub-channel index otherwise (it only runs SRBs).
    private let subchannelIndex: Int?
    /// Sub-channels created so far (they stay registered across guest reconnects).
    private var subchannelsCreated = 0
    private var newSubchannels: [any VMBusDevice] = []

    /// - Parameters:
    ///   - index: the controller number; it makes the instance GUID unique.
    ///   - maxSubchannels: extra queues offered when the guest asks (Linux asks for one per
    ///     vCPU beyond the first); each runs on its own I/O thread.
    public init(index: Int, disks: [DiskImage], memory: GuestRAM, maxSubchannels: Int = 0,
                log: @escaping @Sendable (String) -> Void) {
        let instance = VMBusGUID(0x4B45_454C, 0x5343, 0x5349, [0x80, 0, 0, 0, 0, 0, 0, UInt8(truncatingIfNeeded: index)])
        offer = VMBusChannelOffer(classID: VMBusDeviceClass.scsi, instanceID: instance)
        subchannelIndex = nil
        controller = StorageControllerProtocol(configuration: .init(
            maxTransferBytes: Self.maxTransferBytes, maxSubchannels: UInt16(clamping: maxSubchannels)))
        var images: [SCSIAddress: DiskImage] = [:]
        var geometry: [SCSIAddress: VirtualDiskGeometry] = [:]
        for (lun, image) in disks.enumerated() {
            let address = SCSIAddress(lun: UInt8(truncatingIfNeeded: lun))
            images[address] = image
            geometry[address] = VirtualDiskGeometry(sizeBytes: image.size, readOnly: image.readOnly,
                                                    serial: "KEEL\(index)-\(lun)", supportsUnmap: !image.readOnly)
        }
        self.images = images
        targets = SCSITargetMap(disks: geometry, maxTransferBytes: Int(controller.configuration.maxTransferBytes))
        self.memory = memory
        self.log = RateLimitedLog(sink: log)
    }

    /// A sub-channel of `primary`: same controller, disks and negotiated protocol.
    private init(subchannelOf primary: StorageControllerDevice, index: Int) {
        offer = VMBusChannelOffer(classID: primary.offer.classID, instanceID: primary.offer.instanceID,
                                  subchannelIndex: UInt16(clamping: index))
        controller = primary.controller
        targets = primary.targets
        images = primary.images
        memory = primary.memory
        log = primary.log
        subchannelIndex = index
    }

    public mutating func channelOpened(_ channel: inout VMBusChannel) {
        if subchannelIndex == nil { controller.reset() }
    }

    public mutating func takeNewSubchannels() -> [any VMBusDevice] {
        defer { newSubchannels = [] }
        return newSubchannels
    }

    public mutating func packetReceived(_ packet: VMBusPacket, on channel: inout VMBusChannel) {
        let action = subchannelIndex == nil ? controller.receive(packet) : controller.receiveOnSubchannel(packet)
        switch action {
        case .none:
            break
        case .reply(let reply), .completeAfterOutstandingIO(let reply):
            // I/O is synchronous on this thread, so nothing is outstanding when a reset arrives.
            channel.send(reply)
        case let .offerSubchannels(first, count, completion):
            if let completion { channel.send(completion) }
            // After a guest reconnect the protocol counts from 1 again; existing ones are reused.
            let end = first + count
            while subchannelsCreated + 1 < end {
                subchannelsCreated += 1
                newSubchannels.append(StorageControllerDevice(subchannelOf: self, index: subchannelsCreated))
            }
        case .execute(let request):
            if let reply = request.completionPacket(execute(request)) { channel.send(reply) }
        }
    }

    public mutating func tick(_ channel: inout VMBusChannel) {}
    public mutating func channelClosed() {
        if subchannelIndex == nil { controller.reset() }
    }

    /// Runs one SRB and returns its completion.
    private func execute(_ request: StorageRequest) -> SCSICompletion {
        let plan = targets.plan(request)
        switch plan {
        case .respond(let completion):
            guard !completion.dataIn.isEmpty else { return completion }
            let length = min(completion.dataIn.count, request.bufferLength)
            guard let segments = request.guestSegments(length: length), memory.scatter(completion.dataIn, to: segments) else {
                return .invalidRequest
            }
            return completion
        case .read(let transfer):
            return plan.complete(run(transfer.disk, request, transfer.length) { (image, segments) throws(DiskIOError) in
                try image.read(at: transfer.byteOffset, into: segments, of: memory)
            })
        case .write(let transfer):
            return plan.complete(run(transfer.disk, request, transfer.length) { (image, segments) throws(DiskIOError) in
                try image.write(at: transfer.byteOffset, from: segments, of: memory)
                if transfer.forceUnitAccess { try image.flush() }
            })
        case .flush(let disk):
            return plan.complete(run(disk, request, 0) { (image, _) throws(DiskIOError) in try image.flush() })
        case let .unmap(disk, length):
            guard let segments = request.guestSegments(length: length), let list = memory.gather(segments) else {
                return .invalidRequest
            }
            switch targets.unmapRanges(parameterList: list, disk: disk) {
            case .respond(let completion):
                return completion
            case .discard(let ranges):
                return plan.complete(run(disk, request, 0) { (image, _) throws(DiskIOError) in
                    for r in ranges { try image.punchHole(at: r.byteOffset, length: r.length) }
                })
            }
        }
    }

    /// Runs an image operation over the first `length` bytes of the guest buffer.
    private func run(_ disk: SCSIAddress, _ request: StorageRequest, _ length: Int,
                     _ body: (DiskImage, [GuestSegment]) throws(DiskIOError) -> Void) -> SCSIIOResult {
        guard let image = images[disk], let segments = request.guestSegments(length: length) else {
            return .ioError(code: EINVAL)
        }
        do {
            try body(image, segments)
            return .success(bytesTransferred: length)
        } catch {
            _ = log.log("disk \(image.path): \(error)")
            switch error {
            case .system(let e) where e.errno == ENOSPC: return .noSpace
            case .system(let e): return .ioError(code: e.errno)
            case .outsideGuestMemory, .readOnly: return .ioError(code: EFAULT)
            }
        }
    }
}
