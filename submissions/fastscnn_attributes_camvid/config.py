# Attribute-based zero-shot baseline for CamVid (direct attribute prediction, Lampert et al. 2009):
# Fast-SCNN features, then frugalbench's FrugalbenchAttributeHead (registered by the harness, no
# submission code) predicting the benchmark's 12 binary attributes per pixel. Classes are scored by
# attribute agreement, so the unseen classes of split1 (pavement, bicyclist) can be predicted
# although no pixel of them was trained on. The attribute table and the split's unseen classes are
# filled in by the harness from the benchmark file; `calibration` (calibrated stacking: a constant
# taken off seen-class scores) was fitted on the val split by scripts/zero_shot_baseline.sh.
_base_ = ['mmseg::_base_/models/fast_scnn.py']

norm_cfg = dict(type='BN', requires_grad=True, momentum=0.01)
num_classes = 11
aux_loss = dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4, avg_non_ignore=True)

model = dict(
    data_preprocessor=dict(size=(192, 192)),
    backbone=dict(norm_cfg=norm_cfg),
    decode_head=dict(
        _delete_=True, type='FrugalbenchAttributeHead', num_classes=num_classes, split='split1',
        calibration=0.19054, score_unseen=True, ignore_index=255,
        head=dict(type='DepthwiseSeparableFCNHead', in_channels=128, channels=128, concat_input=False,
                  in_index=-1, norm_cfg=norm_cfg, align_corners=False)),
    auxiliary_head=[
        dict(type='FCNHead', in_channels=128, channels=32, num_convs=1, num_classes=num_classes, in_index=-2,
             norm_cfg=norm_cfg, concat_input=False, align_corners=False, ignore_index=255,
             loss_decode=aux_loss),
        dict(type='FCNHead', in_channels=64, channels=32, num_convs=1, num_classes=num_classes, in_index=-3,
             norm_cfg=norm_cfg, concat_input=False, align_corners=False, ignore_index=255,
             loss_decode=aux_loss),
    ],
    test_cfg=dict(mode='whole'))

# Read by `frugalbench train` (the harness owns the data pipeline, the budget and the split).
train_schedule = dict(
    iters=400, batch_size=8, crop_size=(192, 192),
    optimizer=dict(type='AdamW', lr=4e-3, weight_decay=0.01),
    poly_power=0.9, eta_min=1e-5, checkpoint_interval=50)
