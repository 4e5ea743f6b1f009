# BiSeNetV2 (Yu et al., IJCV 2021) from MMSegmentation's zoo at reduced width (detail branch
# 32/32/64, semantic branch 16/32/64/64, aggregation 64, head 128 channels; no auxiliary
# heads), for the SYNTHETIC benchmark's 7 classes at 128x128. Trained by `frugalbench train`
# from random initialisation.
_base_ = ['mmseg::_base_/models/bisenetv2.py']

norm_cfg = dict(type='BN', requires_grad=True)
num_classes = 7
crop_size = (128, 128)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(detail_channels=(32, 32, 64), semantic_channels=(16, 32, 64, 64), bga_channels=64,
                  norm_cfg=norm_cfg),
    decode_head=dict(in_channels=64, channels=128, num_classes=num_classes, norm_cfg=norm_cfg,
                     ignore_index=255,
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
                                      avg_non_ignore=True)),
    auxiliary_head=None,
    test_cfg=dict(mode='whole'))

# Read by `frugalbench train` (the harness owns the data pipeline and the budget).
train_schedule = dict(
    iters=300, batch_size=8, crop_size=crop_size,
    optimizer=dict(type='AdamW', lr=4e-3, weight_decay=0.01),
    poly_power=0.9, eta_min=1e-5, num_workers=0, checkpoint_interval=100)
