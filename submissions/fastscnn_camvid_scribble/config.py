# Fast-SCNN (Poudel et al. 2019) for CamVid's 11 classes, trained from random init.
# The model comes from MMSegmentation's zoo; frugalbench fixes the data pipelines.
_base_ = ['mmseg::_base_/models/fast_scnn.py']

norm_cfg = dict(type='BN', requires_grad=True, momentum=0.01)
num_classes = 11
loss = dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
            avg_non_ignore=True)
aux_loss = dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4,
                avg_non_ignore=True)

model = dict(
    data_preprocessor=dict(size=(256, 256)),
    backbone=dict(norm_cfg=norm_cfg),
    decode_head=dict(num_classes=num_classes, norm_cfg=norm_cfg,
                     ignore_index=255, loss_decode=loss),
    auxiliary_head=[
        dict(type='FCNHead', in_channels=128, channels=32, num_convs=1,
             num_classes=num_classes, in_index=-2, norm_cfg=norm_cfg,
             concat_input=False, align_corners=False, ignore_index=255,
             loss_decode=aux_loss),
        dict(type='FCNHead', in_channels=64, channels=32, num_convs=1,
             num_classes=num_classes, in_index=-3, norm_cfg=norm_cfg,
             concat_input=False, align_corners=False, ignore_index=255,
             loss_decode=aux_loss),
    ],
    test_cfg=dict(mode='whole'))

# Read by `frugalbench train` (the harness owns the data pipeline and the budget).
train_schedule = dict(
    iters=3000, batch_size=8, crop_size=(256, 256),
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.01),
    poly_power=0.9, eta_min=1e-5)
