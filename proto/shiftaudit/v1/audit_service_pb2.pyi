import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuditState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIT_STATE_UNSPECIFIED: _ClassVar[AuditState]
    AUDIT_STATE_QUEUED: _ClassVar[AuditState]
    AUDIT_STATE_RUNNING: _ClassVar[AuditState]
    AUDIT_STATE_SUCCEEDED: _ClassVar[AuditState]
    AUDIT_STATE_FAILED: _ClassVar[AuditState]
    AUDIT_STATE_CANCELLED: _ClassVar[AuditState]
    AUDIT_STATE_INTERRUPTED: _ClassVar[AuditState]
AUDIT_STATE_UNSPECIFIED: AuditState
AUDIT_STATE_QUEUED: AuditState
AUDIT_STATE_RUNNING: AuditState
AUDIT_STATE_SUCCEEDED: AuditState
AUDIT_STATE_FAILED: AuditState
AUDIT_STATE_CANCELLED: AuditState
AUDIT_STATE_INTERRUPTED: AuditState

class ModelRef(_message.Message):
    __slots__ = ("path", "digest")
    PATH_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    path: str
    digest: str
    def __init__(self, path: _Optional[str] = ..., digest: _Optional[str] = ...) -> None: ...

class Preprocessing(_message.Message):
    __slots__ = ("mean", "std", "pixel_range", "channel_order", "output_kind", "preset")
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    PIXEL_RANGE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ORDER_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_KIND_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    mean: _containers.RepeatedScalarFieldContainer[float]
    std: _containers.RepeatedScalarFieldContainer[float]
    pixel_range: float
    channel_order: str
    output_kind: str
    preset: str
    def __init__(self, mean: _Optional[_Iterable[float]] = ..., std: _Optional[_Iterable[float]] = ..., pixel_range: _Optional[float] = ..., channel_order: _Optional[str] = ..., output_kind: _Optional[str] = ..., preset: _Optional[str] = ...) -> None: ...

class AuditOptions(_message.Message):
    __slots__ = ("protocols", "size", "shift_x", "shift_y", "pairs_per_image", "seed", "canvas_height", "canvas_width", "filter", "sweep_pixels", "sweep_step", "size_sweep_min", "size_sweep_max", "size_sweep_step", "batch", "strict", "target_halfwidth", "choose_pairs", "large_shift")
    PROTOCOLS_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHIFT_X_FIELD_NUMBER: _ClassVar[int]
    SHIFT_Y_FIELD_NUMBER: _ClassVar[int]
    PAIRS_PER_IMAGE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    CANVAS_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CANVAS_WIDTH_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    SWEEP_PIXELS_FIELD_NUMBER: _ClassVar[int]
    SWEEP_STEP_FIELD_NUMBER: _ClassVar[int]
    SIZE_SWEEP_MIN_FIELD_NUMBER: _ClassVar[int]
    SIZE_SWEEP_MAX_FIELD_NUMBER: _ClassVar[int]
    SIZE_SWEEP_STEP_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    TARGET_HALFWIDTH_FIELD_NUMBER: _ClassVar[int]
    CHOOSE_PAIRS_FIELD_NUMBER: _ClassVar[int]
    LARGE_SHIFT_FIELD_NUMBER: _ClassVar[int]
    protocols: _containers.RepeatedScalarFieldContainer[str]
    size: int
    shift_x: int
    shift_y: int
    pairs_per_image: int
    seed: int
    canvas_height: int
    canvas_width: int
    filter: str
    sweep_pixels: int
    sweep_step: float
    size_sweep_min: int
    size_sweep_max: int
    size_sweep_step: int
    batch: int
    strict: bool
    target_halfwidth: float
    choose_pairs: bool
    large_shift: bool
    def __init__(self, protocols: _Optional[_Iterable[str]] = ..., size: _Optional[int] = ..., shift_x: _Optional[int] = ..., shift_y: _Optional[int] = ..., pairs_per_image: _Optional[int] = ..., seed: _Optional[int] = ..., canvas_height: _Optional[int] = ..., canvas_width: _Optional[int] = ..., filter: _Optional[str] = ..., sweep_pixels: _Optional[int] = ..., sweep_step: _Optional[float] = ..., size_sweep_min: _Optional[int] = ..., size_sweep_max: _Optional[int] = ..., size_sweep_step: _Optional[int] = ..., batch: _Optional[int] = ..., strict: _Optional[bool] = ..., target_halfwidth: _Optional[float] = ..., choose_pairs: _Optional[bool] = ..., large_shift: _Optional[bool] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("path", "digest", "size_bytes", "loaded")
    PATH_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    LOADED_FIELD_NUMBER: _ClassVar[int]
    path: str
    digest: str
    size_bytes: int
    loaded: bool
    def __init__(self, path: _Optional[str] = ..., digest: _Optional[str] = ..., size_bytes: _Optional[int] = ..., loaded: _Optional[bool] = ...) -> None: ...

class TensorInfo(_message.Message):
    __slots__ = ("name", "shape", "dtype")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    dtype: str
    def __init__(self, name: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., dtype: _Optional[str] = ...) -> None: ...

class Audit(_message.Message):
    __slots__ = ("audit_id", "state", "model_path", "created_at", "finished_at", "error", "report_json", "images", "images_left", "summary_json")
    AUDIT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MODEL_PATH_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    IMAGES_LEFT_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_JSON_FIELD_NUMBER: _ClassVar[int]
    audit_id: str
    state: AuditState
    model_path: str
    created_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    error: str
    report_json: str
    images: int
    images_left: int
    summary_json: str
    def __init__(self, audit_id: _Optional[str] = ..., state: _Optional[_Union[AuditState, str]] = ..., model_path: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error: _Optional[str] = ..., report_json: _Optional[str] = ..., images: _Optional[int] = ..., images_left: _Optional[int] = ..., summary_json: _Optional[str] = ...) -> None: ...

class GetServerInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetServerInfoResponse(_message.Message):
    __slots__ = ("version", "onnxruntime_version", "tensorrt_version", "cuda_version", "driver_version", "devices", "execution_providers", "max_concurrent_audits", "max_queued_audits", "max_upload_bytes", "max_upload_files", "max_state_bytes", "state_bytes", "retain_days")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ONNXRUNTIME_VERSION_FIELD_NUMBER: _ClassVar[int]
    TENSORRT_VERSION_FIELD_NUMBER: _ClassVar[int]
    CUDA_VERSION_FIELD_NUMBER: _ClassVar[int]
    DRIVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_AUDITS_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUED_AUDITS_FIELD_NUMBER: _ClassVar[int]
    MAX_UPLOAD_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_UPLOAD_FILES_FIELD_NUMBER: _ClassVar[int]
    MAX_STATE_BYTES_FIELD_NUMBER: _ClassVar[int]
    STATE_BYTES_FIELD_NUMBER: _ClassVar[int]
    RETAIN_DAYS_FIELD_NUMBER: _ClassVar[int]
    version: str
    onnxruntime_version: str
    tensorrt_version: str
    cuda_version: str
    driver_version: str
    devices: _containers.RepeatedScalarFieldContainer[str]
    execution_providers: _containers.RepeatedScalarFieldContainer[str]
    max_concurrent_audits: int
    max_queued_audits: int
    max_upload_bytes: int
    max_upload_files: int
    max_state_bytes: int
    state_bytes: int
    retain_days: float
    def __init__(self, version: _Optional[str] = ..., onnxruntime_version: _Optional[str] = ..., tensorrt_version: _Optional[str] = ..., cuda_version: _Optional[str] = ..., driver_version: _Optional[str] = ..., devices: _Optional[_Iterable[str]] = ..., execution_providers: _Optional[_Iterable[str]] = ..., max_concurrent_audits: _Optional[int] = ..., max_queued_audits: _Optional[int] = ..., max_upload_bytes: _Optional[int] = ..., max_upload_files: _Optional[int] = ..., max_state_bytes: _Optional[int] = ..., state_bytes: _Optional[int] = ..., retain_days: _Optional[float] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...

class LoadModelRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: ModelRef
    def __init__(self, model: _Optional[_Union[ModelRef, _Mapping]] = ...) -> None: ...

class LoadModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: ModelInfo
    def __init__(self, model: _Optional[_Union[ModelInfo, _Mapping]] = ...) -> None: ...

class UnloadModelRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: ModelRef
    def __init__(self, model: _Optional[_Union[ModelRef, _Mapping]] = ...) -> None: ...

class UnloadModelResponse(_message.Message):
    __slots__ = ("unloaded",)
    UNLOADED_FIELD_NUMBER: _ClassVar[int]
    unloaded: bool
    def __init__(self, unloaded: _Optional[bool] = ...) -> None: ...

class GetModelMetadataRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: ModelRef
    def __init__(self, model: _Optional[_Union[ModelRef, _Mapping]] = ...) -> None: ...

class GetModelMetadataResponse(_message.Message):
    __slots__ = ("model", "runner", "inputs", "outputs", "layout", "preprocessing_json")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RUNNER_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    PREPROCESSING_JSON_FIELD_NUMBER: _ClassVar[int]
    model: ModelInfo
    runner: str
    inputs: _containers.RepeatedCompositeFieldContainer[TensorInfo]
    outputs: _containers.RepeatedCompositeFieldContainer[TensorInfo]
    layout: str
    preprocessing_json: str
    def __init__(self, model: _Optional[_Union[ModelInfo, _Mapping]] = ..., runner: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[TensorInfo, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[TensorInfo, _Mapping]]] = ..., layout: _Optional[str] = ..., preprocessing_json: _Optional[str] = ...) -> None: ...

class UploadImagesRequest(_message.Message):
    __slots__ = ("file_name", "data")
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    file_name: str
    data: bytes
    def __init__(self, file_name: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class UploadImagesResponse(_message.Message):
    __slots__ = ("dataset_id", "files", "bytes")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    files: int
    bytes: int
    def __init__(self, dataset_id: _Optional[str] = ..., files: _Optional[int] = ..., bytes: _Optional[int] = ...) -> None: ...

class RunAuditRequest(_message.Message):
    __slots__ = ("model", "data_path", "dataset_id", "options", "preprocessing", "labels_csv", "resume_json", "partial_report")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DATA_PATH_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    PREPROCESSING_FIELD_NUMBER: _ClassVar[int]
    LABELS_CSV_FIELD_NUMBER: _ClassVar[int]
    RESUME_JSON_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_REPORT_FIELD_NUMBER: _ClassVar[int]
    model: ModelRef
    data_path: str
    dataset_id: str
    options: AuditOptions
    preprocessing: Preprocessing
    labels_csv: str
    resume_json: str
    partial_report: bool
    def __init__(self, model: _Optional[_Union[ModelRef, _Mapping]] = ..., data_path: _Optional[str] = ..., dataset_id: _Optional[str] = ..., options: _Optional[_Union[AuditOptions, _Mapping]] = ..., preprocessing: _Optional[_Union[Preprocessing, _Mapping]] = ..., labels_csv: _Optional[str] = ..., resume_json: _Optional[str] = ..., partial_report: _Optional[bool] = ...) -> None: ...

class AuditAccepted(_message.Message):
    __slots__ = ("audit_id", "queue_position")
    AUDIT_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    audit_id: str
    queue_position: int
    def __init__(self, audit_id: _Optional[str] = ..., queue_position: _Optional[int] = ...) -> None: ...

class AuditProgress(_message.Message):
    __slots__ = ("images_done", "images_total", "frames", "frames_per_second", "elapsed_seconds", "frames_total")
    IMAGES_DONE_FIELD_NUMBER: _ClassVar[int]
    IMAGES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    FRAMES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    images_done: int
    images_total: int
    frames: int
    frames_per_second: float
    elapsed_seconds: float
    frames_total: int
    def __init__(self, images_done: _Optional[int] = ..., images_total: _Optional[int] = ..., frames: _Optional[int] = ..., frames_per_second: _Optional[float] = ..., elapsed_seconds: _Optional[float] = ..., frames_total: _Optional[int] = ...) -> None: ...

class AuditReport(_message.Message):
    __slots__ = ("audit_id", "report_json", "not_stored")
    AUDIT_ID_FIELD_NUMBER: _ClassVar[int]
    REPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    NOT_STORED_FIELD_NUMBER: _ClassVar[int]
    audit_id: str
    report_json: str
    not_stored: str
    def __init__(self, audit_id: _Optional[str] = ..., report_json: _Optional[str] = ..., not_stored: _Optional[str] = ...) -> None: ...

class RunAuditResponse(_message.Message):
    __slots__ = ("accepted", "progress", "report")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    accepted: AuditAccepted
    progress: AuditProgress
    report: AuditReport
    def __init__(self, accepted: _Optional[_Union[AuditAccepted, _Mapping]] = ..., progress: _Optional[_Union[AuditProgress, _Mapping]] = ..., report: _Optional[_Union[AuditReport, _Mapping]] = ...) -> None: ...

class GetAuditRequest(_message.Message):
    __slots__ = ("audit_id",)
    AUDIT_ID_FIELD_NUMBER: _ClassVar[int]
    audit_id: str
    def __init__(self, audit_id: _Optional[str] = ...) -> None: ...

class GetAuditResponse(_message.Message):
    __slots__ = ("audit",)
    AUDIT_FIELD_NUMBER: _ClassVar[int]
    audit: Audit
    def __init__(self, audit: _Optional[_Union[Audit, _Mapping]] = ...) -> None: ...

class ListAuditsRequest(_message.Message):
    __slots__ = ("page_size",)
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    def __init__(self, page_size: _Optional[int] = ...) -> None: ...

class ListAuditsResponse(_message.Message):
    __slots__ = ("audits",)
    AUDITS_FIELD_NUMBER: _ClassVar[int]
    audits: _containers.RepeatedCompositeFieldContainer[Audit]
    def __init__(self, audits: _Optional[_Iterable[_Union[Audit, _Mapping]]] = ...) -> None: ...

class CancelAuditRequest(_message.Message):
    __slots__ = ("audit_id",)
    AUDIT_ID_FIELD_NUMBER: _ClassVar[int]
    audit_id: str
    def __init__(self, audit_id: _Optional[str] = ...) -> None: ...

class CancelAuditResponse(_message.Message):
    __slots__ = ("audit",)
    AUDIT_FIELD_NUMBER: _ClassVar[int]
    audit: Audit
    def __init__(self, audit: _Optional[_Union[Audit, _Mapping]] = ...) -> None: ...

class DeleteAuditRequest(_message.Message):
    __slots__ = ("audit_id",)
    AUDIT_ID_FIELD_NUMBER: _ClassVar[int]
    audit_id: str
    def __init__(self, audit_id: _Optional[str] = ...) -> None: ...

class DeleteAuditResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Dataset(_message.Message):
    __slots__ = ("dataset_id", "files", "bytes", "created_at", "used_at")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    USED_AT_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    files: int
    bytes: int
    created_at: _timestamp_pb2.Timestamp
    used_at: _timestamp_pb2.Timestamp
    def __init__(self, dataset_id: _Optional[str] = ..., files: _Optional[int] = ..., bytes: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., used_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListDatasetsResponse(_message.Message):
    __slots__ = ("datasets",)
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[Dataset]
    def __init__(self, datasets: _Optional[_Iterable[_Union[Dataset, _Mapping]]] = ...) -> None: ...

class DeleteDatasetRequest(_message.Message):
    __slots__ = ("dataset_id",)
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    def __init__(self, dataset_id: _Optional[str] = ...) -> None: ...

class DeleteDatasetResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
