extension NetworkAdapterProtocol {
    /// OIDs answered by QUERY (OID_GEN_SUPPORTED_LIST).
    static let supportedQueryOIDs: [UInt32] = [
        RNDISOID.supportedList, RNDISOID.hardwareStatus, RNDISOID.mediaSupported, RNDISOID.mediaInUse,
        RNDISOID.maximumFrameSize, RNDISOID.linkSpeed, RNDISOID.currentPacketFilter, RNDISOID.maximumTotalSize,
        RNDISOID.mediaConnectStatus, RNDISOID.permanentAddress, RNDISOID.currentAddress,
        RNDISOID.maximumMulticastListSize, RNDISOID.offloadHardwareCapabilities,
    ]

    /// The answer to a QUERY. Unknown OIDs (including RSS capabilities: no vRSS) and the
    /// friendly name when none is configured get NOT_SUPPORTED with no data.
    func queryAnswer(oid: UInt32) -> (status: UInt32, data: [UInt8]) {
        switch oid {
        case RNDISOID.supportedList: return ok(Self.supportedQueryOIDs)
        case RNDISOID.hardwareStatus, RNDISOID.mediaSupported, RNDISOID.mediaInUse: return ok([0])
        case RNDISOID.maximumFrameSize: return ok([UInt32(configuration.mtu)])
        case RNDISOID.maximumTotalSize: return ok([UInt32(configuration.maxFrameLength)])
        case RNDISOID.linkSpeed: return ok([configuration.linkSpeed])
        case RNDISOID.currentPacketFilter: return ok([packetFilter])
        case RNDISOID.mediaConnectStatus: return ok([linkUp ? 0 : 1])
        case RNDISOID.maximumMulticastListSize: return ok([32])
        case RNDISOID.permanentAddress, RNDISOID.currentAddress: return (RNDISStatus.success, configuration.macAddress)
        case RNDISOID.offloadHardwareCapabilities:
            return (RNDISStatus.success, NDISOffload.capabilities(nvspVersion: negotiatedVersion ?? NVSPVersion.v2))
        case RNDISOID.friendlyName:
            guard let name = configuration.friendlyName else { return (RNDISStatus.notSupported, []) }
            return (RNDISStatus.success, Self.utf16Name(name))
        default: return (RNDISStatus.notSupported, [])
        }
    }

    /// Applies a SET. The packet filter is recorded (0 stops data delivery); offload parameters
    /// switch receive checksum reporting and coalescing; RSS parameters and MAC changes
    /// (RNDIS_CONFIG_PARAMETER) are not supported.
    mutating func applySet(oid: UInt32, data: [UInt8]) -> UInt32 {
        switch oid {
        case RNDISOID.currentPacketFilter:
            guard data.count >= 4 else { return RNDISStatus.invalidData }
            packetFilter = data.u32(0)
            return RNDISStatus.success
        case RNDISOID.multicastList:
            return data.count % 6 == 0 ? RNDISStatus.success : RNDISStatus.invalidData
        case RNDISOID.offloadParameters:
            return offloadSettings.apply(data) ? RNDISStatus.success : RNDISStatus.invalidData
        case RNDISOID.currentLookahead, RNDISOID.networkLayerAddresses:
            return RNDISStatus.success
        default:
            return RNDISStatus.notSupported
        }
    }

    private func ok(_ values: [UInt32]) -> (status: UInt32, data: [UInt8]) {
        var w = LEWriter(capacity: 4 * values.count)
        for value in values { w.u32(value) }
        return (RNDISStatus.success, w.bytes)
    }

    /// UTF-16LE with a terminating NUL, at most 512 bytes (Linux's buffer).
    static func utf16Name(_ name: String) -> [UInt8] {
        var w = LEWriter()
        for unit in name.utf16.prefix(255) + [0] { w.u16(unit) }
        return w.bytes
    }
}
